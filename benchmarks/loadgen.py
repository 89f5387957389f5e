"""A small HTTP load generator for when `wrk` is not installed: run as its own process, like wrk.

    python benchmarks/loadgen.py --duration 5 --connections 16 URL [URL ...]

Cycles through the URLs on keep-alive connections (aiohttp) for `duration` seconds and prints one JSON
line: {"requests", "seconds", "rps", "errors", "p50_ms", "p99_ms"}. Only 127.0.0.1 URLs are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


async def run(urls: list[str], duration: float, connections: int) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + duration

    async def worker(session) -> None:
        nonlocal errors, counter
        while time.perf_counter() < deadline:
            url = urls[counter % len(urls)]
            counter += 1
            start = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(latencies), "seconds": round(seconds, 3), "rps": round(len(latencies) / seconds, 1),
            "errors": errors, "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    for url in args.urls:
        if urlsplit(url).hostname != "127.0.0.1":
            raise SystemExit(f"refusing a non-loopback target: {url}")
    print(json.dumps(asyncio.run(run(args.urls, args.duration, args.connections))))


if __name__ == "__main__":
    main()
