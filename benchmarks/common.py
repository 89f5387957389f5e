"""Shared helpers for the benchmarks: statistics, tables, JSON results, bench settings, loopback servers.

Every benchmark measures its figures side by side in one run (interleaved where it matters) and
writes `benchmarks/results/<name>.json` (git-ignored) with the machine, the settings and the raw
summaries, so a README figure can always be traced to a file and a command.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "cache"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# --- statistics -------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> dict:
    """p50/p95/p99/mean/max in milliseconds, with the run count."""
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50": round(percentile(ms, 50), 3), "p95": round(percentile(ms, 95), 3),
            "p99": round(percentile(ms, 99), 3), "mean": round(statistics.fmean(ms), 3), "max": round(max(ms), 3)}


# --- output -----------------------------------------------------------------------------------

def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def write_results(name: str, data: dict) -> Path:
    """Write benchmarks/results/<name>.json (latest) and a timestamped copy."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    payload = {"benchmark": name, "utc": stamp, "machine": machine(), "command": " ".join(sys.argv), **data}
    text = json.dumps(payload, indent=2, default=str)
    (RESULTS / f"{name}-{stamp}.json").write_text(text)
    latest = RESULTS / f"{name}.json"
    latest.write_text(text)
    print(f"\nresults: {latest.relative_to(ROOT)}")
    return latest


# --- settings and data ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """Environment for a server under test: development, embedded parts, offline model, nothing remote.

    NuGet points at a closed loopback port, MCP and tracing are off, rate limits are off (the load
    would trip them), so every figure is the service's own work on 127.0.0.1.
    """
    closed = f"http://127.0.0.1:{free_port()}/"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MONGODB_", "PHOENIX_", "ARIZE_", "OTEL_"))}
    env.update(ENVIRONMENT="development", HOST="127.0.0.1", PORT=str(port), DATA_DIR=str(data_dir),
               MCP_SERVERS="", NUGET_SEARCH_URLS=closed + "query", NUGET_REGISTRATION_URL=closed,
               NUGET_FLAT_CONTAINER_URL=closed, RATE_LIMIT_CHAT="0", RATE_LIMIT_FEEDBACK="0", HF_HUB_OFFLINE="1",
               PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def bench_settings(data_dir: Path, **overrides):
    """The same configuration as `bench_env`, as a Settings object for in-process use."""
    from services.core.settings import Settings

    closed = f"http://127.0.0.1:{free_port()}/"
    values = dict(environment="development", data_dir=data_dir, mongodb_uri=None, openai_api_key=None,
                  openai_base_url=None, phoenix_collector_endpoint=None, arize_space_id=None, arize_api_key=None,
                  mcp_servers=[], rate_limit_chat=0, rate_limit_feedback=0, nuget_search_urls=[closed + "query"],
                  nuget_registration_url=closed, nuget_flat_container_url=closed)
    values.update(overrides)
    return Settings(_env_file=None, **values)


def seeded_data_dir(target: Path) -> Path:
    """A data dir holding the shipped knowledge base, embedded once and cached under benchmarks/results/cache."""
    import asyncio

    cached = CACHE / "seeded-data"
    if not (cached / "mongo").exists():
        from services.lifespan import open_services

        shutil.rmtree(cached, ignore_errors=True)
        print("seeding the knowledge base once (embeds every chunk, ~20-60 s)...", flush=True)

        async def build():
            async with open_services(bench_settings(cached)):
                pass

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:  # its own thread: callers may already run an event loop
            pool.submit(asyncio.run, build()).result()
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(cached, target, ignore=shutil.ignore_patterns("embedded.lock"))
    return target


# --- servers in their own process ------------------------------------------------------------

class Server:
    """A server process on 127.0.0.1 started by `benchmarks/serve.py` (same uvicorn flags for every target)."""

    def __init__(self, target: str, *, port: int, env: dict[str, str], ready_path: str = "/health",
                 timeout: float = 300) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "serve.py"), target], env=env,
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{target} server exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{target} server did not become ready in {timeout}s")

    def rss_mb(self) -> dict:
        """Current and peak resident memory of the server process (Linux /proc), in MB."""
        values = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
        return {"rss_mb": values.get("VmRSS"), "peak_rss_mb": values.get("VmHWM")}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
