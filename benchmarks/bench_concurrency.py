"""Concurrency: N simultaneous chat streams (default 200, offline model) against the service in its own
process on 127.0.0.1; reports errors (must be 0), time to the metadata line and to `complete`
(p50/p95/max over every stream), wall time per wave, and the server's RSS before and at peak.

    python benchmarks/bench_concurrency.py [--streams 200] [--waves 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from common import Server, bench_env, free_port, print_table, seeded_data_dir, summary_ms, write_results

QUESTIONS = [
    "How do I stream a chat response with IChatClient?",
    "How do I add a plugin to a Semantic Kernel agent?",
    "How do I generate embeddings in .NET?",
    "How do I run an ONNX model in C#?",
    "What is the Model Context Protocol C# SDK?",
]


async def one_stream(client, question: str, release: asyncio.Event) -> dict:
    await release.wait()  # every stream starts at the same moment
    start = time.perf_counter()
    first = None
    last_type = None
    try:
        async with client.stream("POST", "/api/chat", json={"message": question}) as response:
            if response.status_code != 200:
                await response.aread()
                return {"ok": False, "error": f"HTTP {response.status_code}"}
            async for line in response.aiter_lines():
                if line.strip():
                    first = first or time.perf_counter()
                    last_type = json.loads(line)["type"]
    except Exception as exc:  # a dropped or timed-out stream is an error to count, not a crash
        return {"ok": False, "error": type(exc).__name__}
    done = time.perf_counter()
    return {"ok": last_type == "complete", "error": None if last_type == "complete" else f"last line {last_type}",
            "to_metadata": first - start, "to_complete": done - start}


async def wave(base_url: str, streams: int) -> tuple[list[dict], float]:
    import httpx

    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        release = asyncio.Event()
        tasks = [asyncio.create_task(one_stream(client, QUESTIONS[i % len(QUESTIONS)], release)) for i in range(streams)]
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        release.set()
        results = await asyncio.gather(*tasks)
        return results, time.perf_counter() - start


async def run(streams: int, waves: int) -> dict:
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with Server("app", port=port, env=bench_env(seeded_data_dir(Path(tmp) / "data"), port)) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:  # warm the model and caches
                for question in QUESTIONS:
                    (await client.post("/api/chat", json={"message": question})).raise_for_status()
            before = server.rss_mb()
            all_results, walls = [], []
            for _ in range(waves):
                results, wall = await wave(server.url, streams)
                all_results += results
                walls.append(round(wall, 3))
            after = server.rss_mb()
    ok = [r for r in all_results if r["ok"]]
    errors: dict[str, int] = {}
    for r in all_results:
        if not r["ok"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    return {
        "streams_per_wave": streams, "waves": waves, "streams_total": len(all_results), "errors": sum(errors.values()),
        "error_kinds": errors, "wall_seconds_per_wave": walls,
        "streams_per_second": round(len(ok) / sum(walls), 1),
        "to_metadata_ms": summary_ms([r["to_metadata"] for r in ok]),
        "to_complete_ms": summary_ms([r["to_complete"] for r in ok]),
        "server_rss_mb_before": before["rss_mb"], "server_peak_rss_mb": after["peak_rss_mb"],
        "server_rss_mb_after": after["rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--waves", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(run(args.streams, args.waves))
    m, c = result["to_metadata_ms"], result["to_complete_ms"]
    print_table(f"{args.streams} simultaneous chat streams x {args.waves} waves (offline model)", ["metric", "value"], [
        ["streams", result["streams_total"]], ["errors", result["errors"]],
        ["to metadata p50 / p95 ms", f"{m['p50']:.0f} / {m['p95']:.0f}"],
        ["to complete p50 / p95 / max ms", f"{c['p50']:.0f} / {c['p95']:.0f} / {c['max']:.0f}"],
        ["wall time per wave s", result["wall_seconds_per_wave"]], ["completed streams/s", result["streams_per_second"]],
        ["server RSS before MB", result["server_rss_mb_before"]], ["server peak RSS MB", result["server_peak_rss_mb"]]])
    write_results("concurrency", result)


if __name__ == "__main__":
    main()
