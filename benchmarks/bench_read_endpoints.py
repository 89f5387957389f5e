"""Read endpoints: req/s of `/api/samples` (page 20 of 10k docs) and `/api/news?search=` (10k docs)
against a bare FastAPI JSON endpoint returning the same samples page, in the same run.

Both servers run in their own processes with identical uvicorn flags (benchmarks/serve.py) on
127.0.0.1; the load comes from a separate process: `wrk` when installed (Debian: apt-get install -y
wrk), else benchmarks/loadgen.py (aiohttp). Targets are loaded one at a time, round-robin for
`--rounds` rounds of `--duration` seconds, so drift hits all of them alike. Goal: >= 50 % of bare.

    python benchmarks/bench_read_endpoints.py [--docs 10000] [--duration 5] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, Server, bench_env, free_port, print_table, write_results

SEARCH_TERMS = ["semantic", "kernel", "openai", "agent", "c++", "embedding", "onnx", "azure", "release", "preview",
                "ml.net", "vector", "chat", "mcp", "aspire", "rag", "ollama", "tokenizer", "evaluation", "copilot",
                "dotnet 9", "streaming", "function calling", "plugin", "memory", "phi", "github", "blazor", "sql",
                "cosmos", "search", "prompt", "safety", "image", "speech", "local", "foundry", "llama", "gpt", "news"]


def documents(count: int) -> tuple[list[dict], list[dict]]:
    """`count` news and `count` samples made from the shipped ones (unique ids, spread dates, varied titles)."""
    news_seed = json.loads((ROOT / "data" / "news.json").read_text(encoding="utf-8"))
    sample_seed = json.loads((ROOT / "data" / "samples.json").read_text(encoding="utf-8"))
    base = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    news, samples = [], []
    for n in range(count):
        item = dict(news_seed[n % len(news_seed)])
        item.update(documentId=f"bench-news-{n}", title=f"{item['title']} #{n}", rss_item_id=f"bench-{n}",
                    rss_feed_url="https://devblogs.microsoft.com/dotnet/feed/", rss_author=f"Author {n % 50}")
        item["publishedDate"] = item["indexedDate"] = item["createdDate"] = base + dt.timedelta(hours=n)
        news.append(item)
        sample = dict(sample_seed[n % len(sample_seed)])
        sample.update(id=f"bench-sample-{n}", title=f"{sample['title']} #{n:05d}")
        samples.append(sample)
    return news, samples


def fill_store(data_dir: Path, count: int) -> None:
    from services.storage.database import NEWS, SAMPLES
    from services.storage.embedded_mongo import EmbeddedAsyncClient

    news, samples = documents(count)

    async def fill():
        client = EmbeddedAsyncClient(data_dir, timeout_seconds=None)
        db = client["csharp_ai_buddy"]
        for name, docs in ((NEWS, news), (SAMPLES, samples)):
            for start in range(0, len(docs), 1000):
                await db[name].insert_many(docs[start:start + 1000])
        await client.close()

    asyncio.run(fill())


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def load(urls: list[str], duration: float, connections: int, tmp: Path) -> dict:
    """Drive `urls` (cycled) from a separate process; req/s and latency percentiles."""
    if shutil.which("wrk"):
        script = tmp / "paths.lua"
        paths = [u.split("127.0.0.1", 1)[1].split("/", 1)[1] for u in urls]
        script.write_text("local paths = {" + ",".join(json.dumps("/" + p) for p in paths) + "}\nlocal i = 0\n"
                          "request = function()\n  i = i + 1\n  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n")
        base = urls[0].split("/", 3)[:3]
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", str(script),
                              "/".join(base) + "/"], capture_output=True, text=True, check=True).stdout
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        socket_errors = re.search(r"Socket errors: (.*)", out)
        return {"tool": "wrk", "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                "requests": int(re.search(r"(\d+) requests in", out).group(1)),
                "p50_ms": _ms(re.search(r"50%\s+(\S+)", out).group(1)), "p99_ms": _ms(re.search(r"99%\s+(\S+)", out).group(1)),
                "errors": int(errors.group(1)) if errors else 0, "socket_errors": socket_errors.group(1) if socket_errors else None}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), "--duration", str(duration),
                          "--connections", str(connections), *urls], capture_output=True, text=True, check=True).stdout
    return {"tool": "loadgen.py", **json.loads(out)}


def main() -> None:
    import urllib.parse
    import urllib.request

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        print(f"writing {args.docs:,} news and {args.docs:,} samples...", flush=True)
        fill_store(data, args.docs)
        app_port, bare_port = free_port(), free_port()
        env = bench_env(data, app_port, SEED_ON_STARTUP="false")
        with Server("app", port=app_port, env=env) as app:
            page = f"{app.url}/api/samples?page=20&page_size=20"
            for _ in range(100):  # the snapshots load in the background: wait until pages come from memory
                with urllib.request.urlopen(page) as response:
                    body = response.read()
                with urllib.request.urlopen(f"{app.url}/api/news?search=semantic") as response:
                    response.read()
                if json.loads(body)["total"] == args.docs:
                    break
            payload = tmp / "payload.json"
            payload.write_bytes(body)
            with Server("bare", port=bare_port, env={**env, "PORT": str(bare_port), "BARE_PAYLOAD": str(payload)}) as bare:
                targets = {
                    "bare FastAPI (same page JSON)": [f"{bare.url}/bare"],
                    "/api/samples?page=20": [page],
                    "/api/news?search=<40 terms>": [f"{app.url}/api/news?search={urllib.parse.quote(t)}" for t in SEARCH_TERMS],
                }
                for urls in targets.values():  # warm every path (and the search cache) once
                    load(urls, 1.0, args.connections, tmp)
                runs: dict[str, list[dict]] = {name: [] for name in targets}
                for _ in range(args.rounds):
                    for name, urls in targets.items():
                        runs[name].append(load(urls, args.duration, args.connections, tmp))
            rss = app.rss_mb()
    bare_name = next(iter(targets))
    summary = {}
    for name, results in runs.items():
        rps = [r["rps"] for r in results]
        summary[name] = {"rps_mean": round(statistics.fmean(rps), 1), "rps_per_round": rps,
                         "p50_ms": [r["p50_ms"] for r in results], "p99_ms": [r["p99_ms"] for r in results],
                         "errors": sum(r["errors"] for r in results), "tool": results[0]["tool"]}
    for name in summary:
        summary[name]["vs_bare"] = round(summary[name]["rps_mean"] / summary[bare_name]["rps_mean"], 3)
    rows = [[name, s["rps_mean"], f"{s['vs_bare']:.0%}", statistics.median(s["p50_ms"]), statistics.median(s["p99_ms"]),
             s["errors"]] for name, s in summary.items()]
    print_table(f"read endpoints ({args.docs:,} docs each; {args.rounds} rounds x {args.duration:.0f} s per target, "
                f"{args.connections} connections, {summary[bare_name]['tool']})",
                ["target", "req/s", "vs bare", "p50 ms", "p99 ms", "errors"], rows)
    write_results("read_endpoints", {"docs": args.docs, "duration": args.duration, "rounds": args.rounds,
                                     "connections": args.connections, "targets": summary, "app_rss_mb": rss})


if __name__ == "__main__":
    main()
