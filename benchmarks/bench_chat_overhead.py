"""Chat overhead: what HTTP adds to one agent run (offline model, embedded parts, seeded knowledge base).

Side by side in one run, interleaved pair by pair (alternating which goes first):
  in-process  `ChatRunner.run(...)` through `web.ndjson` consumed directly (the same NDJSON lines, no HTTP)
  HTTP        `POST /api/chat` to the same app and configuration served by uvicorn in its own process
              (benchmarks/serve.py, as in production) on 127.0.0.1, read line by line with httpx
Each pair asks the same question; reported: time to the metadata line and to `complete`, p50/p95,
what HTTP adds (per-pair differences), and as the floor a trivial JSON round trip (`GET /api/config`)
to the same server in the same iteration. Goal: HTTP adds <= 15 ms p50 and <= 10 % of the total.

    python benchmarks/bench_chat_overhead.py [--runs 200] [--warmup 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import (Server, bench_env, bench_settings, free_port, percentile, print_table, seeded_data_dir, summary_ms,
                    write_results)

QUESTIONS = [
    "How do I call an OpenAI chat model from C# with Microsoft.Extensions.AI?",
    "How do I stream a chat response with IChatClient?",
    "How do I add a plugin to a Semantic Kernel agent?",
    "How do I generate embeddings in .NET?",
    "How do I run an ONNX model in C#?",
]


async def in_process(services, question: str) -> tuple[float, float, str]:
    from services.agent.run import ChatTurn
    from web.ndjson import ndjson_stream

    start = time.perf_counter()
    first = last = None
    kind = ""
    async for line in ndjson_stream(services.chat.run(ChatTurn(message=question))):
        now = time.perf_counter()
        first = first or now
        last, kind = now, json.loads(line)["type"]
    return first - start, last - start, kind


async def over_http(client, question: str) -> tuple[float, float, str]:
    start = time.perf_counter()
    first = last = None
    kind = ""
    async with client.stream("POST", "/api/chat", json={"message": question}) as response:
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            now = time.perf_counter()
            first = first or now
            last, kind = now, json.loads(line)["type"]
    return first - start, last - start, kind


async def run(runs: int, warmup: int) -> dict:
    import httpx

    from services.lifespan import open_services

    samples = {"inproc": [], "http": [], "floor": []}
    errors = 0
    with tempfile.TemporaryDirectory() as tmp:
        # Two copies of the same seeded data: the server process serves one, the in-process runs use the other.
        port = free_port()
        served = seeded_data_dir(Path(tmp) / "served")
        local = seeded_data_dir(Path(tmp) / "local")
        with Server("app", port=port, env=bench_env(served, port)) as server:
            async with open_services(bench_settings(local)) as services, \
                    httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                for i in range(warmup + runs):
                    question = QUESTIONS[i % len(QUESTIONS)]
                    order = ("inproc", "http") if i % 2 == 0 else ("http", "inproc")  # no side always goes first
                    pair = {}
                    for side in order:
                        pair[side] = await (in_process(services, question) if side == "inproc" else over_http(client, question))
                    start = time.perf_counter()  # the floor: one trivial JSON round trip to the same server
                    (await client.get("/api/config")).raise_for_status()
                    floor = time.perf_counter() - start
                    if i >= warmup:
                        samples["floor"].append(floor)
                        for side in pair:
                            samples[side].append(pair[side])
                            errors += pair[side][2] != "complete"

    def col(side, index):
        return [s[index] for s in samples[side]]

    added_first = [h - p for h, p in zip(col("http", 0), col("inproc", 0))]
    added_total = [h - p for h, p in zip(col("http", 1), col("inproc", 1))]
    share = [(h - p) / h for h, p in zip(col("http", 1), col("inproc", 1))]
    result = {
        "runs": runs, "warmup": warmup, "errors": errors,
        "in_process": {"to_metadata_ms": summary_ms(col("inproc", 0)), "to_complete_ms": summary_ms(col("inproc", 1))},
        "http": {"to_metadata_ms": summary_ms(col("http", 0)), "to_complete_ms": summary_ms(col("http", 1))},
        "http_round_trip_floor_ms": summary_ms(samples["floor"]),
        "http_adds": {
            "to_metadata_ms_p50": round(statistics.median(added_first) * 1000, 3),
            "to_complete_ms_p50": round(statistics.median(added_total) * 1000, 3),
            "to_complete_ms_p95": round(percentile(added_total, 95) * 1000, 3),
            "share_of_total_p50": round(statistics.median(share), 4),
            "p50_difference_ms": round((percentile(col("http", 1), 50) - percentile(col("inproc", 1), 50)) * 1000, 3),
        },
    }
    result["goal_met"] = result["http_adds"]["to_complete_ms_p50"] <= 15 and result["http_adds"]["share_of_total_p50"] <= 0.10
    return result


def main() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)  # NuGet is unreachable by design; its warnings are noise here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(run(args.runs, args.warmup))
    rows = []
    for side, label in (("in_process", "in-process"), ("http", "HTTP")):
        for metric in ("to_metadata_ms", "to_complete_ms"):
            s = result[side][metric]
            rows.append([label, metric.replace("_ms", ""), s["n"], s["p50"], s["p95"], s["max"]])
    print_table(f"chat overhead ({args.runs} interleaved pairs, offline model; ms)", ["path", "time to", "n", "p50", "p95", "max"], rows)
    adds = result["http_adds"]
    print_table("what HTTP adds (per-pair differences)", ["metric", "value"], [
        ["to metadata, p50 ms", adds["to_metadata_ms_p50"]], ["to complete, p50 ms", adds["to_complete_ms_p50"]],
        ["to complete, p95 ms", adds["to_complete_ms_p95"]],
        ["floor: GET /api/config round trip, p50 ms", result["http_round_trip_floor_ms"]["p50"]], ["share of total, p50", adds["share_of_total_p50"]],
        ["errors", result["errors"]], ["goal (<= 15 ms and <= 10 %)", "met" if result["goal_met"] else "MISSED"]])
    write_results("chat_overhead", result)


if __name__ == "__main__":
    main()
