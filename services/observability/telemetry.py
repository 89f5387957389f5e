"""Website telemetry, recorded only with the user's consent: stored in `telemetry` and sent as one span.

Any event type is accepted, but what is kept is bounded: per event (size, depth, attribute count),
in time (rows older than TELEMETRY_RETENTION_DAYS are deleted) and in number (past
TELEMETRY_MAX_ROWS new events are dropped). A failure to store or export never fails the request:
telemetry is best effort by design.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Callable

from opentelemetry import context as otel_context
from pymongo.errors import OperationFailure

from services.storage.database import TELEMETRY, Database
from services.core.errors import BadRequest, PayloadTooLarge

log = logging.getLogger(__name__)

EVENT_TYPE_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
MAX_DATA_BYTES = 8 * 1024
MAX_DEPTH = 5
MAX_SPAN_ATTRIBUTES = 64
MAX_ATTRIBUTE_CHARS = 500
NO_CONSENT_MESSAGE = "Telemetry not recorded: the user has not given consent."
FULL_MESSAGE = "Telemetry not recorded: the event store is full."
# Client timestamps outside this range are refused (422): they are clock errors or probes, and the far
# ends (year 9999 at UTC-14) cannot even be converted to UTC.
EARLIEST_TIMESTAMP = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
LATEST_TIMESTAMP = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)
RETENTION_INDEX = "received_at_retention"
RECOUNT_SECONDS = 60.0  # at the row cap, how often the real count is read again (rows expire meanwhile)


def client_timestamp(value: dt.datetime | None) -> dt.datetime | None:
    """A client's event time as aware UTC (naive means UTC); ValueError when out of range or unconvertible."""
    if value is None:
        return None
    try:
        moment = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("timestamp is out of range") from None
    if not EARLIEST_TIMESTAMP <= moment < LATEST_TIMESTAMP:
        raise ValueError(f"timestamp must be between {EARLIEST_TIMESTAMP.year} and {LATEST_TIMESTAMP.year}")
    return moment


class TelemetryStore:
    """The `telemetry` collection behind its row cap; one per app (the count is kept in memory).

    Counting on every event would cost a query each time (~0.1 s per 20k rows on the embedded
    engine), so the count is read at startup, then kept by adding our own inserts, and read again at
    most every RECOUNT_SECONDS once the cap is reached. With several workers each keeps its own count,
    so the cap can be passed by a little; it bounds growth, it is not an exact quota.
    """

    def __init__(self, *, database: Database, max_rows: int, retention_days: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.database, self.max_rows, self.retention_days, self.clock = database, max_rows, retention_days, clock
        self.count: int | None = None
        self._counted_at = float("-inf")

    async def prepare(self) -> None:
        """Startup: the retention index (idempotent), expired rows gone where no TTL monitor runs, the count."""
        await ensure_telemetry_retention(self.database, self.retention_days)
        if self.max_rows:
            await self._recount()

    async def has_room(self) -> bool:
        if not self.max_rows:
            return True
        if self.count is None or (self.count >= self.max_rows and self.clock() - self._counted_at >= RECOUNT_SECONDS):
            await self._recount()
        return self.count < self.max_rows

    async def insert(self, document: dict) -> None:
        await self.database[TELEMETRY].insert_one(document)
        if self.count is not None:
            self.count += 1

    async def _recount(self) -> None:
        collection = self.database[TELEMETRY]
        if self.database.embedded:
            await delete_expired(self.database, self.retention_days)
            self.count = await collection.count_documents({})
        else:
            self.count = await collection.estimated_document_count()  # collection metadata: no scan
        self._counted_at = self.clock()


async def delete_expired(database: Database, retention_days: int) -> int:
    """Delete events received more than `retention_days` ago (0 keeps everything); returns how many."""
    if retention_days <= 0:
        return 0
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=retention_days)
    result = await database[TELEMETRY].delete_many({"received_at": {"$lt": cutoff}})
    return result.deleted_count


async def ensure_telemetry_retention(database: Database, retention_days: int) -> None:
    """Expire events by `received_at`; idempotent, and a changed retention replaces the old one.

    MongoDB: a TTL index (its monitor deletes expired rows about once a minute). The embedded engine
    does honour TTL indexes, but by scanning the whole collection on every read and write (20k rows
    made one insert_many take minutes), so there the index is a plain one and expired rows are deleted
    here at startup, and again whenever the row cap is reached (see TelemetryStore._recount).
    """
    collection = database[TELEMETRY]
    if database.embedded:
        await collection.create_index("received_at", name=RETENTION_INDEX)
        deleted = await delete_expired(database, retention_days)
        if deleted:
            log.info("telemetry: deleted %d events older than %d days", deleted, retention_days)
        return
    options = {"expireAfterSeconds": retention_days * 86400} if retention_days > 0 else {}
    try:
        await collection.create_index("received_at", name=RETENTION_INDEX, **options)
    except OperationFailure:  # the index exists with another retention (or none): replace it
        await collection.drop_index(RETENTION_INDEX)
        await collection.create_index("received_at", name=RETENTION_INDEX, **options)


@dataclass(frozen=True)
class TelemetryResult:
    recorded: bool
    message: str


def clean_data(data: dict, depth: int = 0) -> dict:
    """A copy whose keys are safe field names (no leading `$`, no dots), refusing deep nesting."""
    if depth >= MAX_DEPTH:
        raise BadRequest(f"Telemetry data may nest at most {MAX_DEPTH} levels deep.")
    return {_safe_key(key): _clean_value(value, depth) for key, value in data.items()}


def _clean_value(value, depth: int):
    if isinstance(value, dict):
        return clean_data(value, depth + 1)
    if isinstance(value, list):
        if depth + 1 >= MAX_DEPTH:
            raise BadRequest(f"Telemetry data may nest at most {MAX_DEPTH} levels deep.")
        return [_clean_value(item, depth + 1) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return str(value)  # BSON and OTLP both stop at 64-bit integers
    return value


def _safe_key(key: str) -> str:
    key = str(key).replace(".", "_").replace("\x00", "")[:100]
    return "_" + key[1:] if key.startswith("$") else (key or "_")


def event_attributes(data: dict, prefix: str = "event_data") -> dict:
    """Scalar values as `event_data.<key>` span attributes (nested objects flattened with dots)."""
    attributes: dict = {}
    stack = [(prefix, data)]
    while stack and len(attributes) < MAX_SPAN_ATTRIBUTES:
        name, node = stack.pop(0)
        for key, value in node.items():
            if len(attributes) >= MAX_SPAN_ATTRIBUTES:
                break
            path = f"{name}.{key}"
            if isinstance(value, (bool, int, float)):
                attributes[path] = value
            elif isinstance(value, str):
                attributes[path] = value[:MAX_ATTRIBUTE_CHARS]
            elif isinstance(value, dict):
                stack.append((path, value))
    return attributes


async def record_telemetry(*, database: Database, tracer, event_type: str, data: dict | None,
                           timestamp: dt.datetime | None, user_consent: bool, metrics=None,
                           store: TelemetryStore | None = None) -> TelemetryResult:
    """With consent: store the event and export it as a span. Without, or with the store full: touch nothing."""
    if metrics is not None:
        metrics.telemetry.labels(consent="yes" if user_consent else "no").inc()
    if not user_consent:
        return TelemetryResult(recorded=False, message=NO_CONSENT_MESSAGE)
    data = clean_data(data or {})
    if len(json.dumps(data, ensure_ascii=False, default=str).encode()) > MAX_DATA_BYTES:
        raise PayloadTooLarge(f"Telemetry data is limited to {MAX_DATA_BYTES} bytes of JSON.")
    try:
        client_time = client_timestamp(timestamp)
    except ValueError as exc:
        raise BadRequest(f"Telemetry {exc}.") from None
    store = store or TelemetryStore(database=database, max_rows=0, retention_days=0)
    try:
        room = await store.has_room()
    except Exception:
        log.warning("could not count the stored telemetry events", exc_info=True)
        room = True  # the cap bounds growth; a failed count must not drop events
    if not room:
        return TelemetryResult(recorded=False, message=FULL_MESSAGE)
    received = dt.datetime.now(dt.timezone.utc)
    stored = await _store(store, {"event_type": event_type, "data": data, "client_timestamp": client_time,
                                  "received_at": received})
    exported = _export(tracer, event_type, data, client_time)
    if stored or exported:
        return TelemetryResult(recorded=True, message="Telemetry recorded.")
    return TelemetryResult(recorded=False, message="Telemetry accepted but could not be recorded right now.")


async def _store(store: TelemetryStore, document: dict) -> bool:
    try:
        await store.insert(document)
        return True
    except Exception:
        log.warning("could not store a telemetry event", exc_info=True)
        return False


def _export(tracer, event_type: str, data: dict, client_time: dt.datetime | None) -> bool:
    try:
        attributes = {"openinference.span.kind": "CHAIN", "event_type": event_type, **event_attributes(data)}
        if client_time is not None:
            attributes["event_timestamp"] = client_time.isoformat()
        # An empty context: each event is its own trace, never a child of whatever is current.
        span = tracer.start_span(f"telemetry.{event_type}", context=otel_context.Context(), attributes=attributes)
        span.end()
        return True
    except Exception:
        log.warning("could not export a telemetry span", exc_info=True)
        return False
