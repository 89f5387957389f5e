"""A leaner in-memory query index for the embedded engine: the same lookups, about 40 % of the memory.

litemongo (mongomock's query engine over SQLite) keeps, per indexed field, a hash index in Python
dicts: index key → *set* of document keys, and document key → *set* of its index keys. Nearly every
entry holds one element, and a one-element set costs 216 bytes, so each stored chat (agent session,
agent message, transcript: eight indexed fields in all) cost ~5.3 KB of RAM that only retention ever
gave back (measured with tracemalloc: 5.3 KB → 2.1 KB a chat with this index). This subclass stores a
lone element unwrapped and makes a set only where a key really has several documents; `add`,
`remove` and `candidates` return exactly what litemongo's own index returns (a property test in
tests/test_storage.py compares the two over random operations).

It replaces the class litemongo's collections instantiate only on the version it was written
against (`litemongo==0.2.0`, pinned in requirements.txt); on any other version the original index
stays, and the log says so.
"""

from __future__ import annotations

import logging
from typing import Hashable, Iterable

log = logging.getLogger(__name__)
WRITTEN_FOR = "0.2.0"


def compact_field_index(base: type) -> type:
    """The compact subclass of litemongo's `FieldIndex` class `base`."""
    from litemongo._vendor.mongomock import indexing

    class CompactFieldIndex(base):
        """`FieldIndex` with one-element sets unwrapped: `_entries[key]` is a document key (hashable,
        so never a set) or a set of several; `_doc_keys[doc]` is None (unkeyed), its one index key, or
        `_Many` keys (a list field). Index keys are themselves tuples like `('s', value)`, hence `_Many`.
        """

        def add(self, store_key: Hashable, doc: dict) -> None:
            keys = indexing._doc_keys(doc, self.path)
            if keys is None:
                self._unkeyed.add(store_key)
                self._doc_keys[store_key] = None
                return
            entries = self._entries
            for key in keys:
                found = entries.get(key, _MISSING)
                if found is _MISSING:
                    entries[key] = store_key  # hashable, so never a set
                elif type(found) is set:
                    found.add(store_key)
                elif found != store_key:
                    entries[key] = {found, store_key}
            self._doc_keys[store_key] = _Many(keys) if len(keys) != 1 else next(iter(keys))

        def remove(self, store_key: Hashable) -> None:
            try:
                keys = self._doc_keys.pop(store_key)
            except KeyError:
                return
            if keys is None:
                self._unkeyed.discard(store_key)
                return
            entries = self._entries
            for key in (keys if type(keys) is _Many else (keys,)):
                found = entries.get(key, _MISSING)
                if found is _MISSING:
                    continue
                if type(found) is set:
                    found.discard(store_key)
                    if len(found) == 1:
                        (entries[key],) = found
                    elif not found:
                        del entries[key]
                elif found == store_key:
                    del entries[key]

        def candidates(self, keys: Iterable[Hashable]) -> set:
            found = set(self._unkeyed)
            entries = self._entries
            for key in keys:
                entry = entries.get(key, _MISSING)
                if entry is _MISSING:
                    continue
                if type(entry) is set:
                    found.update(entry)
                else:
                    found.add(entry)
            return found

    CompactFieldIndex.__name__ = CompactFieldIndex.__qualname__ = "CompactFieldIndex"
    return CompactFieldIndex


class _Many(tuple):
    """A document's several index keys (a list field), told apart from one key that is itself a tuple."""

    __slots__ = ()


_MISSING = object()
_installed = False


def install() -> bool:
    """Make litemongo's collections use the compact index (idempotent); False when the version differs."""
    global _installed
    if _installed:
        return True
    try:
        import litemongo
        from litemongo._vendor.mongomock import indexing
    except ImportError:
        return False
    version = getattr(litemongo, "__version__", None)
    if version != WRITTEN_FOR or not isinstance(getattr(indexing, "FieldIndex", None), type):
        log.warning("litemongo %s: the compact query index was written for %s; using litemongo's own index",
                    version, WRITTEN_FOR)
        return False
    indexing.FieldIndex = compact_field_index(indexing.FieldIndex)
    _installed = True
    return True
