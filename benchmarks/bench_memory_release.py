"""Memory after a crowd: does the server give back what 1,000 simultaneous streams took?

`python main.py` (pinned to core 1, hosted-model path against `benchmarks/upstream.py`, the paced
OpenAI stand-in, admission control off) is warmed with a few chats; then `--streams` chats are
released at one instant and all stream to the end. RSS is read before, at its peak while they run,
when the last one ends, and every 10 s for `--after` s afterwards. `--env KEY=VALUE` (repeatable)
starts one more server with those variables, on the same upstream and data, for a side-by-side row
(e.g. `--env PYTHONMALLOC=malloc`, `--env MALLOC_ARENA_MAX=2`).

    python benchmarks/bench_memory_release.py [--streams 1000] [--after 60] [--env KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, bench_env, free_port, print_table, seeded_data_dir, write_results
from processes import rss_mb, start, stop

QUESTION = "How do I stream a chat response with IChatClient?"


async def crowd(url: str, pid: int, streams: int, after: float) -> dict:
    import aiohttp

    release = asyncio.Event()
    errors = 0
    peak = 0.0

    async def one(session) -> None:
        nonlocal errors
        await release.wait()
        try:
            async with session.post(url + "/api/chat", json={"message": QUESTION}) as response:
                body = await response.read()
                errors += response.status != 200 or b'"complete"' not in body
        except aiohttp.ClientError:
            errors += 1

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.2)

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        for _ in range(5):  # warm: model path, embedder, caches
            release.set()
            await one(session)
        release.clear()
        await asyncio.sleep(3)
        before = rss_mb(pid)
        tasks = [asyncio.create_task(one(session)) for _ in range(streams)]
        sampler = asyncio.create_task(sample())
        await asyncio.sleep(0.5)
        started = time.monotonic()
        release.set()
        await asyncio.gather(*tasks)
        seconds = time.monotonic() - started
        sampler.cancel()
    at_end = rss_mb(pid)
    later = []
    for waited in range(10, int(after) + 1, 10):
        await asyncio.sleep(10)
        later.append({"after_s": waited, "rss_mb": round(rss_mb(pid), 1)})
    final = later[-1]["rss_mb"] if later else at_end
    return {"streams": streams, "errors": errors, "seconds": round(seconds, 1), "rss_before_mb": round(before, 1),
            "rss_peak_mb": round(peak, 1), "rss_at_end_mb": round(at_end, 1), "rss_after": later,
            "rss_final_mb": final, "final_over_before_pct": round(100 * (final - before) / before, 1)}


async def run(streams: int, after: float, variants: list[dict[str, str]]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        up_port = free_port()
        upstream_url = f"http://127.0.0.1:{up_port}/v1"
        upstream = start([sys.executable, str(ROOT / "benchmarks" / "upstream.py"), "--port", str(up_port)], core=0,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, log=tmp_path / "upstream.log",
                         ready_url=f"http://127.0.0.1:{up_port}/health")
        data = seeded_data_dir(tmp_path / "data")
        rows = []
        try:
            for number, extra in enumerate(variants):
                port = free_port()
                env = bench_env(data, port, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=upstream_url,
                                OPENAI_API="chat_completions", RATE_LIMIT_CHAT="0", MAX_CONCURRENT_CHATS="0", **extra)
                server = start([sys.executable, str(ROOT / "main.py")], core=1, env=env,
                               log=tmp_path / f"server-{number}.log", ready_url=f"http://127.0.0.1:{port}/health")
                label = " ".join(f"{k}={v}" for k, v in extra.items()) or "defaults"
                try:
                    row = {"server": label, **await crowd(f"http://127.0.0.1:{port}", server.pid, streams, after)}
                finally:
                    stop(server)
                rows.append(row)
                print(f"  {label}: before {row['rss_before_mb']} MB, peak {row['rss_peak_mb']},"
                      f" {after:.0f} s after {row['rss_final_mb']} ({row['final_over_before_pct']:+} %)", flush=True)
        finally:
            stop(upstream)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--after", type=float, default=60.0, help="seconds to watch RSS after the last stream ends")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="one more server with these environment variables (repeatable, all on that server)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    os.sched_setaffinity(0, {0})
    variants = [{}] + ([dict(item.split("=", 1) for item in args.env)] if args.env else [])
    rows = asyncio.run(run(args.streams, args.after, variants))
    print_table(f"server RSS around {args.streams} simultaneous streams (hosted-model path, one core)",
                ["server", "errors", "seconds", "RSS before MB", "peak MB", "at end MB",
                 f"{args.after:.0f} s after MB", "after vs before"],
                [[r["server"], r["errors"], r["seconds"], r["rss_before_mb"], r["rss_peak_mb"],
                  r["rss_at_end_mb"], r["rss_final_mb"], f"{r['final_over_before_pct']:+} %"] for r in rows])
    write_results("memory_release", {"streams": args.streams, "after_s": args.after, "servers": rows})


if __name__ == "__main__":
    main()
