"""Capacity with a hosted model: steady concurrent chats through the service (one core) vs the same two
upstream requests sent straight to the model, at rising concurrency, in one run.

The upstream is `benchmarks/upstream.py` (the OpenAI stand-in, Chat Completions, paced: a tool call
after 0.3 s, then the answer's first word after 0.6 s and 60 deltas 50 ms apart). The service is
`python main.py` pinned to core 1 (`taskset -c 1`); the upstream and this load generator share
core 0. At each concurrency N, N clients chat back to back for `--duration` s, first straight to
the upstream (baseline), then through `POST /api/chat` (or `/v1/chat/completions` with `--api v1`).
Reported: the wait the service adds to the first content and to the end (service percentile minus
baseline percentile), server CPU per chat (/proc/<pid>/stat), RSS per open stream, errors, and the
highest N whose p99 added wait to first content is <= 250 ms. The levels run with admission control
off (MAX_CONCURRENT_CHATS=0); `--burst N` then sends N chats at one instant to a fresh server with
the default limit: how many were admitted, and how fast the rest heard 503.

    python benchmarks/bench_capacity.py [--quick] [--levels 20,40,...] [--duration 20] [--label NAME] [--api chat|v1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, bench_env, free_port, percentile, print_table, seeded_data_dir, write_results
from capacity_burst import burst
from processes import core_busy_seconds, cpu_seconds, rss_mb, start, stop

LEVELS = [20, 40, 80, 120, 160, 200, 240]
QUICK_LEVELS = [20, 80, 160]
TARGET_ADDED_P99_MS = 250.0
CHAT_TIMEOUT_SECONDS = 60.0
QUESTION = "How do I stream a chat response with IChatClient?"
# The baseline's two requests carry what the service sends: instructions and tools, then the tool result.
SYSTEM = "You are C# AI Buddy, an expert in building AI applications with C# and .NET. " * 30
TOOL_RESULT = json.dumps({"query": "IChatClient", "results": [{"title": "IChatClient", "content": "x" * 600}] * 5})


# --- one chat each way ------------------------------------------------------------------------

async def baseline_chat(session, upstream: str) -> dict:
    """The two upstream requests the service makes for one chat, sent straight to the upstream."""
    started = time.perf_counter()
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    body = {"model": "gpt-4.1-mini", "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
    async with session.post(upstream + "/chat/completions", json=body) as response:
        if response.status != 200:
            return {"ok": False, "error": f"HTTP {response.status}"}
        async for _ in response.content:
            pass
    call = {"id": "call_1", "type": "function", "function": {"name": "search_knowledge_base", "arguments": "{}"}}
    messages += [{"role": "assistant", "tool_calls": [call]}, {"role": "tool", "tool_call_id": "call_1",
                                                                "content": TOOL_RESULT}]
    first = None
    async with session.post(upstream + "/chat/completions", json={**body, "messages": messages}) as response:
        if response.status != 200:
            return {"ok": False, "error": f"HTTP {response.status}"}
        async for line in response.content:
            if first is None and line.startswith(b"data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    first = time.perf_counter()
    done = time.perf_counter()
    if first is None:
        return {"ok": False, "error": "no content"}
    return {"ok": True, "first": first - started, "total": done - started}


async def service_chat(session, server: str, api: str) -> dict:
    """One chat through the service: NDJSON `/api/chat` or SSE `/v1/chat/completions`."""
    started = time.perf_counter()
    first, last = None, None
    if api == "v1":
        url, body = server + "/v1/chat/completions", {"model": "csharp-ai-buddy", "stream": True,
                                                       "messages": [{"role": "user", "content": QUESTION}]}
    else:
        url, body = server + "/api/chat", {"message": QUESTION}
    async with session.post(url, json=body) as response:
        if response.status != 200:
            await response.read()
            return {"ok": False, "error": f"HTTP {response.status}"}
        async for line in response.content:
            line = line.strip()
            if not line or line.startswith(b":"):
                continue
            last = line
            if first is None:
                if api == "v1":
                    if line.startswith(b"data: {"):
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        if choices[0].get("delta", {}).get("content"):
                            first = time.perf_counter()
                elif json.loads(line).get("type") == "content":
                    first = time.perf_counter()
    done = time.perf_counter()
    ended = last == b"data: [DONE]" if api == "v1" else (last is not None and json.loads(last)["type"] == "complete")
    if not ended or first is None:
        return {"ok": False, "error": "no complete line" if not ended else "no content"}
    return {"ok": True, "first": first - started, "total": done - started}


# --- one phase: N clients chatting back to back ---------------------------------------------------

async def phase(chat, clients: int, duration: float, pids: dict[str, int]) -> dict:
    """Run `clients` back-to-back chat loops for `duration` s (starts spread over a ramp); summarise."""
    loop = asyncio.get_running_loop()
    ramp = min(4.0, duration / 3)
    begin = loop.time()
    end = begin + duration
    results: list[dict] = []
    rss: list[float] = []
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    core1_before = core_busy_seconds(1)
    own_before = time.process_time()
    rss_idle = rss_mb(pids["server"]) if "server" in pids else 0.0

    async def client(index: int) -> None:
        await asyncio.sleep(ramp * index / clients)
        while loop.time() < end:
            chat_start = loop.time() - begin
            try:
                async with asyncio.timeout(CHAT_TIMEOUT_SECONDS):
                    result = await chat()
            except Exception as exc:  # a failed or timed-out chat is an error to count
                result = {"ok": False, "error": type(exc).__name__}
            result["start"] = chat_start
            results.append(result)

    async def sample() -> None:
        while loop.time() < end:
            await asyncio.sleep(0.5)
            if "server" in pids and ramp < loop.time() - begin < duration:
                rss.append(rss_mb(pids["server"]))

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(client(i) for i in range(clients)))
    sampler.cancel()
    wall = loop.time() - begin
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    core1 = core_busy_seconds(1) - core1_before
    steady = [r for r in results if r["start"] >= ramp]
    ok = [r for r in steady if r["ok"]]
    errors: dict[str, int] = {}
    for r in results:
        if not r["ok"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    summary = {"clients": clients, "chats": len(results), "steady_chats": len(steady), "errors": sum(errors.values()),
               "error_kinds": errors, "wall_s": round(wall, 2),
               "load_cpu_pct": round(100 * (time.process_time() - own_before + cpu.get("upstream", 0)) / wall, 1),
               # other processes on the server's core (this machine is shared): what the server could not use
               "core1_other_pct": round(100 * max(0.0, core1 - cpu.get("server", 0.0)) / wall, 1)}
    for key in ("first", "total"):
        values = [r[key] * 1000 for r in ok] or [float("nan")]
        summary[f"{key}_ms"] = {p: round(percentile(values, q), 1) for p, q in (("p50", 50), ("p99", 99))}
    for name, seconds in cpu.items():
        summary[f"{name}_cpu_ms_per_chat"] = round(1000 * seconds / max(1, len(results)), 2)
        summary[f"{name}_cpu_pct"] = round(100 * seconds / wall, 1)
    if rss:
        steady_rss = sorted(rss)[len(rss) // 2]
        summary.update(server_rss_idle_mb=round(rss_idle, 1), server_rss_steady_mb=round(steady_rss, 1),
                       rss_kb_per_open_stream=round(1024 * max(0.0, steady_rss - rss_idle) / clients, 1))
    return summary


def added(base: dict, service: dict) -> dict:
    return {f"added_{key}_{p}_ms": round(service[f"{key}_ms"][p] - base[f"{key}_ms"][p], 1)
            for key in ("first", "total") for p in ("p50", "p99")}


async def run(levels: list[int], duration: float, api: str, env_extra: dict[str, str], stop_ms: float,
              burst_clients: int = 0) -> dict:
    import aiohttp
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a burst holds one socket per client, here and there
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        up_port, port = free_port(), free_port()
        upstream_url = f"http://127.0.0.1:{up_port}/v1"
        upstream = start([sys.executable, str(ROOT / "benchmarks" / "upstream.py"), "--port", str(up_port)], core=0,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, log=tmp_path / "upstream.log",
                         ready_url=f"http://127.0.0.1:{up_port}/health")
        data = seeded_data_dir(tmp_path / "data")
        os.sched_setaffinity(0, {0})  # the load generator shares core 0 with the upstream (after seeding)

        def start_server(**extra: str):
            # the rising levels measure the server itself: no admission control unless --env sets it
            env = bench_env(data, port, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=upstream_url,
                            OPENAI_API="chat_completions", RATE_LIMIT_CHAT="0", **{**extra, **env_extra})
            return start([sys.executable, str(ROOT / "main.py")], core=1, env=env, log=tmp_path / "server.log",
                         ready_url=f"http://127.0.0.1:{port}/health")

        server = start_server(MAX_CONCURRENT_CHATS="0")
        server_url = f"http://127.0.0.1:{port}"
        try:
            connector = aiohttp.TCPConnector(limit=0, force_close=False)
            timeout = aiohttp.ClientTimeout(total=CHAT_TIMEOUT_SECONDS)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                for _ in range(5):  # warm the model path, the embedder and the caches
                    await service_chat(session, server_url, api)
                idle_rss = rss_mb(server.pid)
                rows = []
                for clients in levels:
                    pids = {"upstream": upstream.pid}
                    base = await phase(lambda: baseline_chat(session, upstream_url), clients, duration, pids)
                    service = await phase(lambda: service_chat(session, server_url, api), clients, duration,
                                          {**pids, "server": server.pid})
                    row = {"clients": clients, "baseline": base, "service": service, **added(base, service)}
                    rows.append(row)
                    print(f"  N={clients}: added first p50/p99 {row['added_first_p50_ms']}/{row['added_first_p99_ms']} ms"
                          f", server CPU {service['server_cpu_ms_per_chat']} ms/chat ({service['server_cpu_pct']}%,"
                          f" others on its core {service['core1_other_pct']}%), errors {service['errors']}", flush=True)
                    if row["added_first_p99_ms"] > stop_ms:
                        print(f"  stopping: p99 added wait past {stop_ms:.0f} ms", flush=True)
                        break
            crowd = None
            if burst_clients:  # a fresh server with the default MAX_CONCURRENT_CHATS, fresh connections
                stop(server)
                server = start_server()
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
                    for _ in range(3):
                        await service_chat(session, server_url, api)
                    crowd = await burst(session, server_url, api, burst_clients)
        finally:
            stop(server)
            stop(upstream)
            server_log = (tmp_path / "server.log").read_text(errors="replace").splitlines()
    within = [r["clients"] for r in rows if r["added_first_p99_ms"] <= TARGET_ADDED_P99_MS and not r["service"]["errors"]]
    return {"api": api, "duration_s": duration, "env": env_extra, "idle_rss_mb": round(idle_rss, 1), "levels": rows,
            "burst": crowd,
            "capacity_clients": max(within, default=0), "target_added_p99_ms": TARGET_ADDED_P99_MS,
            "server_log_tail": server_log[-5:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default=None, help="comma-separated concurrency levels")
    parser.add_argument("--duration", type=float, default=None, help="seconds per phase (default 20; quick 8)")
    parser.add_argument("--quick", action="store_true", help=f"levels {QUICK_LEVELS}, 8 s each")
    parser.add_argument("--api", choices=["chat", "v1"], default="chat")
    parser.add_argument("--label", default="", help="results/capacity-<label>.json (the chart compares labels)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (repeatable)")
    parser.add_argument("--stop-ms", type=float, default=2000, help="stop rising once p99 added passes this")
    parser.add_argument("--burst", type=int, default=0, help="then N chats at the same instant (admission control)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")] if args.levels else (QUICK_LEVELS if args.quick else LEVELS)
    duration = args.duration or (8.0 if args.quick else 20.0)
    env_extra = dict(item.split("=", 1) for item in args.env)
    result = asyncio.run(run(levels, duration, args.api, env_extra, args.stop_ms, args.burst))
    rows = []
    for r in result["levels"]:
        b, s = r["baseline"], r["service"]
        rows.append([r["clients"], f"{b['first_ms']['p50']:.0f}/{b['first_ms']['p99']:.0f}",
                     f"{r['added_first_p50_ms']:.0f}/{r['added_first_p99_ms']:.0f}",
                     f"{r['added_total_p50_ms']:.0f}/{r['added_total_p99_ms']:.0f}",
                     s["server_cpu_ms_per_chat"], b["upstream_cpu_ms_per_chat"], f"{s['server_cpu_pct']:.0f}%",
                     s.get("rss_kb_per_open_stream", "-"), s["errors"], s["steady_chats"], f"{s['load_cpu_pct']:.0f}%",
                     f"{s['core1_other_pct']:.0f}%"])
    print_table(f"capacity ({result['api']}, {duration:g} s per phase; added = service - baseline; "
                f"idle RSS {result['idle_rss_mb']} MB)",
                ["N", "base first p50/p99", "added first p50/p99", "added total p50/p99", "server CPU ms/chat",
                 "upstream CPU ms/chat", "server CPU", "RSS KB/stream", "errors", "chats", "core-0 load",
                 "others on core 1"], rows)
    print(f"\nhighest N with p99 added to first content <= {TARGET_ADDED_P99_MS:.0f} ms and no errors: "
          f"{result['capacity_clients']}")
    if result["burst"]:
        print(f"burst of {args.burst} at once: {json.dumps(result['burst'])}")
    write_results("capacity" + (f"-{args.label}" if args.label else ""), {"label": args.label, **result})


if __name__ == "__main__":
    main()
