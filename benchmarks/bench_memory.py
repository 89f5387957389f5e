"""Memory: the server's RSS idle and after 1,000 and 10,000 stored chats (offline model, `python main.py`).

Every chat is stored (transcript + agent memory), as the website's are; RSS is read from
/proc/<pid>/status after each checkpoint, with the store's size on disk. Chats run `--concurrency`
at a time on 127.0.0.1.

Beside it, side by side: the embedded engine's query-index memory per stored chat with litemongo's
own index and with ours (services/storage/compact_index.py), each in a fresh process that stores
`--probe-chats` chats through the app's own write path (SDK session + transcript) under tracemalloc.

    python benchmarks/bench_memory.py [--chats 1000,10000] [--concurrency 16] [--probe-chats 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from processes import rss_mb, start, stop
from common import ROOT, bench_env, free_port, print_table, seeded_data_dir, write_results

QUESTIONS = ["How do I stream a chat response with IChatClient?", "How do I add a plugin to a Semantic Kernel agent?",
             "How do I generate embeddings in .NET?", "How do I run an ONNX model in C#?"]


def disk_mb(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1)


async def chats(url: str, count: int, concurrency: int) -> int:
    import aiohttp

    errors = 0
    queue = iter(range(count))

    async def client(session) -> None:
        nonlocal errors
        for n in queue:
            try:
                async with session.post(url + "/api/chat", json={"message": QUESTIONS[n % len(QUESTIONS)]}) as response:
                    body = await response.read()
                    errors += response.status != 200 or b'"complete"' not in body
            except aiohttp.ClientError:
                errors += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return errors


async def run(checkpoints: list[int], concurrency: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        port = free_port()
        data = seeded_data_dir(tmp_path / "data")
        server = start([sys.executable, str(ROOT / "main.py")], core=1, env=bench_env(data, port),
                       log=tmp_path / "server.log", ready_url=f"http://127.0.0.1:{port}/health")
        url = f"http://127.0.0.1:{port}"
        rows = []
        try:
            await asyncio.sleep(3)
            rows.append({"stored_chats": 0, "rss_mb": round(rss_mb(server.pid), 1), "store_mb": disk_mb(data),
                         "errors": 0, "seconds": 0})
            done = 0
            for target in checkpoints:
                started = time.monotonic()
                errors = await chats(url, target - done, concurrency)
                done = target
                await asyncio.sleep(2)  # let the last writes settle
                rows.append({"stored_chats": target, "rss_mb": round(rss_mb(server.pid), 1), "store_mb": disk_mb(data),
                             "errors": errors, "seconds": round(time.monotonic() - started, 1)})
                print(f"  {target} chats: RSS {rows[-1]['rss_mb']} MB, store {rows[-1]['store_mb']} MB", flush=True)
        finally:
            stop(server)
    for row in rows[1:]:
        row["kb_per_chat_since_idle"] = round(1024 * (row["rss_mb"] - rows[0]["rss_mb"]) / row["stored_chats"], 2)
    return {"concurrency": concurrency, "checkpoints": rows, "idle_rss_mb": rows[0]["rss_mb"]}


def _probe(compact: bool, chats: int) -> dict:
    """In a fresh process: bytes of Python heap per chat stored through the app's write path."""
    import gc
    import tracemalloc
    import uuid

    from services.storage import compact_index
    from services.storage.conversations import open_session, record_turn
    from services.storage.database import Database, ensure_indexes
    from services.storage.embedded_mongo import EmbeddedAsyncClient

    if not compact:
        compact_index._installed = True  # install() then changes nothing: litemongo's own index stays
    answer = "An answer of typical length with a [cited source](https://example.com/kb/article). " * 10

    async def store(folder: str) -> float:
        client = EmbeddedAsyncClient(Path(folder))
        database = Database(client=client, db=client["bench"], embedded=True)
        try:
            await ensure_indexes(database, conversation_retention_days=30)

            async def one_chat() -> None:
                conversation, span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
                session = open_session(database, conversation)
                await session.get_items(limit=40)  # each turn reads its memory first (builds the query index)
                await session.add_items([{"role": "user", "content": QUESTIONS[0]},
                                         {"role": "assistant", "content": answer}])
                await record_turn(database, conversation_id=conversation, span_id=span, user=QUESTIONS[0],
                                  assistant=answer, sources=[], filters={}, status="completed")
                await database["conversations"].find_one({"span_ids": span}, {"_id": 1})  # as feedback does

            for _ in range(20):  # warm: indexes loaded, caches filled
                await one_chat()
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(chats):
                await one_chat()
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            return grown / chats
        finally:
            await database.close()

    with tempfile.TemporaryDirectory() as folder:
        return {"index": "compact (ours)" if compact else "litemongo's own", "chats": chats,
                "heap_bytes_per_chat": round(asyncio.run(store(folder)))}


def index_probe(chats: int) -> list[dict]:
    """Both indexes, each in its own spawned process (the index class is chosen once per process)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return [pool.apply(_probe, (compact, chats)) for compact in (False, True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", default="1000,10000", help="comma-separated checkpoints (total stored chats)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--probe-chats", type=int, default=3000, help="chats per index in the side-by-side probe (0: skip)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    probe = index_probe(args.probe_chats) if args.probe_chats else []
    if probe:
        base = probe[0]["heap_bytes_per_chat"]
        print_table("embedded engine: Python heap per stored chat, side by side (tracemalloc)",
                    ["query index", "chats", "bytes per chat", "ratio"],
                    [[p["index"], p["chats"], p["heap_bytes_per_chat"], round(p["heap_bytes_per_chat"] / base, 2)]
                     for p in probe])
    result = asyncio.run(run(sorted(int(x) for x in args.chats.split(",")), args.concurrency))
    print_table("server memory by stored chats (offline model)",
                ["stored chats", "RSS MB", "KB/chat since idle", "store on disk MB", "errors", "seconds"],
                [[r["stored_chats"], r["rss_mb"], r.get("kb_per_chat_since_idle", "-"), r["store_mb"], r["errors"],
                  r["seconds"]] for r in result["checkpoints"]])
    result["index_probe"] = probe
    write_results("memory", result)


if __name__ == "__main__":
    main()
