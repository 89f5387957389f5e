"""Ingestion: chunks/s of the knowledge-base ingest path with local embeddings, and embedding alone as
the floor, side by side in one run (rounds interleaved, order alternating):
  pipeline            services.ingest.kb_sync.sync_articles over the shipped articles into a fresh embedded
                      store (chunk, tag, embed, write chunks, update the in-process indexes)
  embed, per article  LocalEmbedder.embed_documents on the same texts, one call per article (as the
                      pipeline calls it)
  embed, one call     the same texts in one call (both ONNX workers busy the whole time): the floor

    python benchmarks/bench_ingestion.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from common import bench_settings, print_table, write_results


async def pipeline_once(data_dir: Path, embedder, articles) -> tuple[float, int]:
    from services.storage.database import ensure_indexes, open_database
    from services.ingest.kb_sync import sync_articles
    from services.retrieval.knowledge_base import KnowledgeBase

    settings = bench_settings(data_dir, seed_on_startup=False)
    database = await open_database(settings)
    try:
        await ensure_indexes(database)
        kb = KnowledgeBase(database=database, embedder=embedder, settings=settings)
        await kb.load()
        start = time.perf_counter()
        report = await sync_articles(database=database, kb=kb, articles=articles, origin="bench", force=True)
        return time.perf_counter() - start, report.chunks_written
    finally:
        await database.close()


async def run(rounds: int) -> dict:
    from services.retrieval.corpus import chunk_markdown, load_articles
    from services.retrieval.embeddings import LocalEmbedder
    from services.ingest.kb_sync import embedding_text

    articles, _problems = load_articles()
    per_article = [[embedding_text(a.title, c["section"], c["content"]) for c in chunk_markdown(a.body)] for a in articles]
    texts = [t for group in per_article for t in group]
    embedder = LocalEmbedder()
    await embedder.embed_documents(texts[:8])  # load the model before timing
    times: dict[str, list[float]] = {"pipeline": [], "embed_per_article": [], "embed_one_call": []}
    chunks = 0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for name in order:
                if name == "pipeline":
                    seconds, chunks = await pipeline_once(Path(tmp) / f"data-{r}", embedder, articles)
                else:
                    start = time.perf_counter()
                    if name == "embed_one_call":
                        await embedder.embed_documents(texts)
                    else:
                        for group in per_article:
                            await embedder.embed_documents(group)
                    seconds = time.perf_counter() - start
                times[name].append(seconds)
    embedder.close()
    result = {"articles": len(articles), "chunks": len(texts), "chunks_written": chunks, "rounds": rounds, "paths": {}}
    for name, values in times.items():
        best, median = min(values), sorted(values)[len(values) // 2]
        result["paths"][name] = {"seconds": [round(v, 2) for v in values], "chunks_per_second_median": round(len(texts) / median, 1),
                                 "chunks_per_second_best": round(len(texts) / best, 1)}
    floor = result["paths"]["embed_one_call"]["chunks_per_second_median"]
    for name in result["paths"]:
        result["paths"][name]["vs_floor"] = round(result["paths"][name]["chunks_per_second_median"] / floor, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(run(args.rounds))
    rows = [[name.replace("_", " "), p["chunks_per_second_median"], p["chunks_per_second_best"], f"{p['vs_floor']:.0%}",
             " / ".join(f"{s:.1f}" for s in p["seconds"])] for name, p in result["paths"].items()]
    print_table(f"ingestion: {result['articles']} articles, {result['chunks']} chunks, local MiniLM (int8 ONNX), "
                f"{args.rounds} interleaved rounds", ["path", "chunks/s (median)", "best", "vs floor", "seconds per round"], rows)
    write_results("ingestion", result)


if __name__ == "__main__":
    main()
