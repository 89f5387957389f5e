"""The model client's fast paths (services/core/fast_openai.py) read exactly what openai's own code reads."""

from __future__ import annotations

import random

from openai._streaming import SSEDecoder

from services.core.fast_openai import FastAsyncOpenAI, FastSSEDecoder, model_http_client

PARTS = [b'data: {"a": 1}\n\n', b": a comment\n", b"event: x\ndata: one\ndata: two\n\n",
         b"id: 7\nretry: 100\ndata: z\n\n", b"data:nospace\n\n", b"data: [DONE]\n\n", b"retry: bad\n\n",
         b"id: a\0b\ndata: q\n\n", b"\n\n", b"data: \xc3\xa9\n\n", b"unknown: field\n\n"]


async def _read(decoder, chunks: list[bytes]) -> list:
    async def arriving():
        for chunk in chunks:
            yield chunk

    out: list = []
    try:
        async for sse in decoder.aiter_bytes(arriving()):
            out.append((sse.event, sse.data, sse.id, sse.retry))
    except Exception as exc:  # a broken UTF-8 line: the same error, after the same events
        out.append(type(exc).__name__)
    return out


async def test_the_fast_sse_decoder_reads_every_stream_as_openais_does():
    """LF, CR and CRLF line ends, comments, multi-line data, ids, retries, cut anywhere, truncated, bad UTF-8."""
    rng = random.Random(7)
    for _ in range(1500):
        body = b"".join(rng.choice(PARTS) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.3:
            body = body.replace(b"\n", rng.choice([b"\r\n", b"\r"]))
        if rng.random() < 0.2:
            body = body[: rng.randint(0, len(body))]
        cuts = sorted(rng.sample(range(len(body) + 1), min(len(body) + 1, rng.randint(0, 6))))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
        assert await _read(FastSSEDecoder(), chunks) == await _read(SSEDecoder(), chunks), chunks


async def test_the_model_client_decodes_fast_over_aiohttp():
    client = FastAsyncOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", http_client=model_http_client(5.0))
    try:
        assert isinstance(client._make_sse_decoder(), FastSSEDecoder)
        assert type(client._client._transport).__name__ == "AiohttpTransport"
    finally:
        await client.close()
