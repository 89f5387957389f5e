"""The crowd phase of bench_capacity.py: N chats released at one instant against MAX_CONCURRENT_CHATS."""

from __future__ import annotations

import asyncio
import time

from common import percentile

QUESTION = "How do I stream a chat response with IChatClient?"


async def burst(session, server: str, api: str, clients: int) -> dict:
    """`clients` chats released at the same instant: how many are admitted, how fast the rest hear 503."""
    release = asyncio.Event()

    async def one() -> dict:
        await release.wait()
        started = time.perf_counter()
        url = server + ("/v1/chat/completions" if api == "v1" else "/api/chat")
        body = ({"model": "csharp-ai-buddy", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
                if api == "v1" else {"message": QUESTION})
        try:
            async with session.post(url, json=body) as response:
                if response.status == 503:
                    await response.read()
                    return {"refused_ms": 1000 * (time.perf_counter() - started),
                            "retry_after": response.headers.get("Retry-After")}
                async for _ in response.content:
                    pass
                return {"status": response.status, "total_ms": 1000 * (time.perf_counter() - started)}
        except Exception as exc:  # counted, not raised: the point is what a crowd gets
            return {"error": type(exc).__name__}

    async def probe() -> list[float]:
        """Once the crowd has been answered, refusals one at a time while the admitted chats still run."""
        await asyncio.sleep(4.0)
        timings = []
        for _ in range(20):
            result = await one()
            if "refused_ms" in result:
                timings.append(result["refused_ms"])
        return timings

    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    await asyncio.sleep(0.5)
    release.set()
    probing = asyncio.create_task(probe())
    results = await asyncio.gather(*tasks)
    probed = await probing
    refused = [r["refused_ms"] for r in results if "refused_ms" in r]
    admitted = [r["total_ms"] for r in results if r.get("status") == 200]
    summary = {"clients": clients, "admitted": len(admitted), "refused": len(refused),
               "errors": sum(1 for r in results if "error" in r or r.get("status") not in (None, 200)),
               "refusals_with_retry_after": sum(1 for r in results if r.get("retry_after"))}
    if refused:
        summary["refused_ms"] = {p: round(percentile(refused, q), 1) for p, q in (("p50", 50), ("p99", 99))}
    if probed:
        summary["refused_one_at_a_time_ms"] = {p: round(percentile(probed, q), 1) for p, q in (("p50", 50), ("p99", 99))}
        summary["probes_refused"] = len(probed)
    if admitted:
        summary["admitted_total_ms"] = {p: round(percentile(admitted, q), 1) for p, q in (("p50", 50), ("p99", 99))}
    return summary
