"""Retrieval alone, per category: `python -m evals.retrieval [--data-dir DIR] [--filters default|none|both]`.

Builds (or reuses) an embedded data dir holding the shipped knowledge base plus the held-out
articles in `evals/heldout/kb`, ingested through the CLI exactly as a user would, then asks every
chat case that expects sources and reports hit@1, hit@5 and MRR by category, with no filters and
with the website's default filters. The held-out cases (`evals/heldout/chat_unseen.json`) were
written by someone not tuning retrieval; use them to measure, never to tune.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from pathlib import Path

from evals.models import load_cases

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "evals" / "heldout"
WEBSITE_DEFAULTS = {"dotnetVersion": ".NET 9", "aiLibrary": "OpenAI", "aiProvider": "OpenAI"}


async def prepare(data_dir: Path):
    """Seed the shipped KB and ingest the held-out folder via the CLI; returns the settings."""
    from services.cli import run_command
    from services.core.settings import Settings

    settings = Settings(_env_file=None, environment="development", data_dir=data_dir, mongodb_uri=None,
                        openai_api_key=None, mcp_servers=[])
    out = open("/dev/null", "w")
    await run_command(["seed"], settings=settings, out=out)
    await run_command(["ingest", "kb", str(HELDOUT / "kb")], settings=settings, out=out)
    return settings


def score(ranked: list[str], expected: list[str]) -> tuple[float, float, float]:
    ranks = [i for i, url in enumerate(ranked) if url in expected]
    first = ranks[0] if ranks else None
    return (float(first == 0), float(first is not None and first < 5), 1.0 / (first + 1) if first is not None else 0.0)


async def measure(data_dir: Path, filter_modes: list[str]) -> dict:
    from services.retrieval.embeddings import create_embedder
    from services.retrieval.knowledge_base import KnowledgeBase
    from services.storage.database import open_database

    settings = await prepare(data_dir)
    cases = [c for c in load_cases([ROOT / "evals" / "test_cases", HELDOUT / "chat_unseen.json"]).chat
             if c.expected_sources and not c.history]
    database = await open_database(settings)
    embedder = create_embedder(settings)
    kb = KnowledgeBase(database=database, embedder=embedder, settings=settings)
    await kb.load()
    report: dict = {"chunks": kb.size, "modes": {}}
    try:
        for mode in filter_modes:
            per: dict[str, list[tuple[float, float, float]]] = {}
            latencies = []
            for case in cases:
                filters = case.filters.active() or (WEBSITE_DEFAULTS if mode == "default" else {})
                if mode == "none":
                    filters = {}
                started = time.perf_counter()
                passages = await kb.search(case.question, filters=filters, k=5)
                latencies.append(time.perf_counter() - started)
                ranked = list(dict.fromkeys(p.url for p in passages))
                per.setdefault(case.category, []).append(score(ranked, case.expected_sources))
                per.setdefault("ALL (shipped)" if case.category != "unseen" else "ALL (unseen)", []).append(
                    score(ranked, case.expected_sources))
            report["modes"][mode] = {
                "latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
                "categories": {cat: {"n": len(v), "hit@1": round(sum(x[0] for x in v) / len(v), 3),
                                     "hit@5": round(sum(x[1] for x in v) / len(v), 3),
                                     "mrr": round(sum(x[2] for x in v) / len(v), 3)} for cat, v in sorted(per.items())}}
    finally:
        embedder.close()
        await database.close()
    report["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return report


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m evals.retrieval", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "evals" / "retrieval")
    p.add_argument("--filters", choices=["none", "default", "both"], default="both")
    p.add_argument("--json", type=Path, help="also write the report here")
    args = p.parse_args()
    modes = ["none", "default"] if args.filters == "both" else [args.filters]
    report = asyncio.run(measure(args.data_dir, modes))
    for mode, body in report["modes"].items():
        print(f"\nfilters={mode}  (p50 search {body['latency_ms_p50']} ms, {report['chunks']} chunks)")
        print(f"{'category':<22}{'n':>4}{'hit@1':>8}{'hit@5':>8}{'MRR':>8}")
        for cat, m in body["categories"].items():
            print(f"{cat:<22}{m['n']:>4}{m['hit@1']:>8.3f}{m['hit@5']:>8.3f}{m['mrr']:>8.3f}")
    print(f"\nmax RSS {report['max_rss_mb']} MB")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
