"""Vector search: top-10 latency and recall@10 of `services.retrieval.vector_index.VectorIndex` at 10k / 100k
(and 1M with `--sizes`) x 384, side by side in one run with
  floor        the memory-bandwidth floor of an exact scan: matrix bytes / measured memory bandwidth
  numpy        the bare NumPy exact scan (matrix @ q, argpartition) on the same matrix
  exact        VectorIndex's exact path (what the service uses below HNSW_THRESHOLD)
  hnsw ef=E    VectorIndex's HNSW path (hnswlib, M=16, ef_construction=200) at several ef_search values
Recall@10 is measured against the exact top-10 of the same queries. Goal: <= 5 ms p50 at 100k with
recall@10 >= 0.95 on clustered ("real-like") data; random uniform vectors are a misleading worst case.

Data:
  clustered  synthetic topics -> sub-topics -> points (unit vectors), queries drawn the same way
  real       (--real) real MiniLM embeddings of the knowledge base, news and samples sentences
             (services.retrieval.embeddings.LocalEmbedder), grown to each size with points between real
             neighbours (see grown_from_real); queries are held-out real sentences

    python benchmarks/bench_vector_search.py [--sizes 10000,100000] [--queries 1000] [--real]
"""

from __future__ import annotations

import argparse
import json
import re
import time

import numpy as np

from common import CACHE, ROOT, print_table, summary_ms, write_results

DIM = 384
K = 10
EF_VALUES = (32, 64, 96, 128, 160, 200)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n: int, queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Topics (n/2000) -> sub-topics (n/50) -> points, like documents about related subjects."""
    rng = np.random.default_rng(seed)
    topics = unit(rng.normal(size=(max(4, n // 2000), DIM)))
    subs = unit(topics[rng.integers(0, len(topics), max(8, n // 50))] + 0.6 * unit(rng.normal(size=(max(8, n // 50), DIM))))

    def draw(m: int) -> np.ndarray:
        return unit(subs[rng.integers(0, len(subs), m)] + 0.9 * unit(rng.normal(size=(m, DIM))))

    return draw(n), draw(queries)


def real_texts() -> list[str]:
    """Sentences from the shipped knowledge base, news and samples (deduplicated, 30+ characters)."""
    texts: list[str] = []
    for path in sorted((ROOT / "data" / "kb").rglob("*.md")):
        body = path.read_text(encoding="utf-8").split("---", 2)[-1]
        texts += re.split(r"(?<=[.!?])\s+|\n{2,}", body)
    for name, fields in (("news.json", ("title", "summary", "content")), ("samples.json", ("title", "description"))):
        for item in json.loads((ROOT / "data" / name).read_text(encoding="utf-8")):
            for field in fields:
                texts += re.split(r"(?<=[.!?])\s+", str(item.get(field) or ""))
    seen, out = set(), []
    for text in (t.strip() for t in texts):
        if len(text) >= 30 and text not in seen and not text.startswith(("```", "|")):
            seen.add(text)
            out.append(text)
    return out


def real_embeddings(limit: int) -> np.ndarray:
    """Embed up to `limit` real sentences with the service's local embedder (cached under results/cache)."""
    cache = CACHE / f"real-embeddings-{limit}.npy"
    if cache.exists():
        return np.load(cache)
    import asyncio

    from services.retrieval.embeddings import LocalEmbedder

    texts = real_texts()[:limit]
    print(f"embedding {len(texts)} real sentences with LocalEmbedder (once; cached)...", flush=True)
    embedder = LocalEmbedder()
    started = time.perf_counter()
    vectors = asyncio.run(embedder.embed_documents(texts))
    embedder.close()
    print(f"  {len(texts) / (time.perf_counter() - started):.0f} texts/s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def grown_from_real(real: np.ndarray, n: int, queries: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Held-out real sentences as queries; the rest grown to n points that lie between real neighbours
    (a real sentence moved part of the way towards one of its 10 nearest real neighbours, plus a little
    noise): paraphrase-like points on the real embeddings' manifold, not blobs of near-duplicates."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    q, base = real[order[:queries]], real[order[queries:]]
    sims = base @ base.T
    np.fill_diagonal(sims, -1)
    neighbours = np.argsort(-sims, axis=1)[:, :10]
    spread = np.sqrt(np.maximum(0.0, 2 - 2 * sims[np.arange(len(base)), neighbours[:, 4]]))  # 5th-neighbour distance
    picks = rng.integers(0, len(base), n - len(base))
    towards = neighbours[picks, rng.integers(0, 10, len(picks))]
    t = rng.uniform(0, 0.5, len(picks))[:, None]
    noise = unit(rng.normal(size=(len(picks), DIM))) * (0.3 * spread[picks])[:, None]
    return np.vstack([base, unit((1 - t) * base[picks] + t * base[towards] + noise)]), q


def read_bandwidth_gbs() -> float:
    """Best-of-5 memory bandwidth (GB/s) from copying a 512 MB float32 buffer (bytes read + written / time)."""
    source = np.ones(128 * 1024 * 1024, dtype=np.float32)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9


def timed(fn, queries: np.ndarray) -> tuple[list[float], list]:
    times, results = [], []
    for q in queries:
        start = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - start)
    return times, results


def recall(truth: list[set], found: list[list]) -> float:
    return float(np.mean([len(t & {i for i, _ in f}) / len(t) for t, f in zip(truth, found)]))


def bench_size(vectors: np.ndarray, queries: np.ndarray, bandwidth: float, exact_queries: int) -> dict:
    from services.retrieval.vector_index import VectorIndex

    n = len(vectors)
    ids = [str(i) for i in range(n)]
    out: dict = {"n": n, "dim": DIM, "queries": len(queries)}
    out["floor_ms"] = round(vectors.nbytes / (bandwidth * 1e9) * 1000, 3)

    def numpy_scan(q):
        scores = vectors @ q
        top = np.argpartition(-scores, K - 1)[:K]
        return top[np.argsort(-scores[top])]

    sub = queries[:exact_queries]
    numpy_times, _ = timed(numpy_scan, sub)
    out["numpy"] = summary_ms(numpy_times)

    exact = VectorIndex(DIM, hnsw_threshold=10**12)
    exact.upsert(ids, vectors)
    exact_times, exact_hits = timed(lambda q: exact.search(q, K), sub)
    out["exact"] = summary_ms(exact_times)
    truth_all = [{str(i) for i in numpy_scan(q)} for q in queries]
    out["exact"]["recall@10"] = recall(truth_all[:exact_queries], exact_hits)
    exact = None  # free its copy of the matrix before the HNSW build

    start = time.perf_counter()
    hnsw = VectorIndex(DIM, hnsw_threshold=0)
    hnsw.upsert(ids, vectors)
    out["hnsw_build_seconds"] = round(time.perf_counter() - start, 1)
    assert hnsw.kind == "hnsw"
    default_ef = hnsw.ef_search
    out["hnsw"] = {}
    for ef in sorted({*EF_VALUES, default_ef}):
        hnsw.ef_search = ef
        times, hits = timed(lambda q: hnsw.search(q, K), queries)
        out["hnsw"][str(ef)] = {**summary_ms(times), "recall@10": round(recall(truth_all, hits), 4)}
    out["hnsw_default_ef"] = default_ef
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=300, help="queries timed on the exact scans")
    parser.add_argument("--real", action="store_true", help="also run on real MiniLM embeddings grown to each size")
    parser.add_argument("--real-texts", type=int, default=3000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    bandwidth = read_bandwidth_gbs()
    print(f"measured memory bandwidth: {bandwidth:.1f} GB/s")
    datasets = ["clustered"] + (["real"] if args.real else [])
    real = real_embeddings(args.real_texts) if args.real else None
    results: dict = {"memory_bandwidth_gbs": round(bandwidth, 2), "k": K, "datasets": {}}
    for dataset in datasets:
        results["datasets"][dataset] = {}
        for n in sizes:
            if dataset == "clustered":
                vectors, queries = clustered(n, args.queries)
            else:
                vectors, queries = grown_from_real(real, n, min(args.queries, len(real) // 5))
            print(f"{dataset} {n:,} x {DIM}: timing...", flush=True)
            r = bench_size(vectors, queries, bandwidth, args.exact_queries)
            results["datasets"][dataset][str(n)] = r
            rows = [["bandwidth floor", r["floor_ms"], "", "", ""],
                    ["numpy exact scan", r["numpy"]["p50"], r["numpy"]["p95"], "1.000", r["numpy"]["n"]],
                    ["VectorIndex exact", r["exact"]["p50"], r["exact"]["p95"], f"{r['exact']['recall@10']:.3f}", r["exact"]["n"]]]
            for ef, h in r["hnsw"].items():
                label = f"VectorIndex hnsw ef={ef}" + (" (default)" if int(ef) == r["hnsw_default_ef"] else "")
                rows.append([label, h["p50"], h["p95"], f"{h['recall@10']:.3f}", h["n"]])
            print_table(f"{dataset} {n:,} x {DIM}, top-{K} (ms; HNSW build {r['hnsw_build_seconds']} s)",
                        ["method", "p50", "p95", "recall@10", "queries"], rows)
    write_results("vector_search", results)


if __name__ == "__main__":
    main()
