"""Website telemetry, recorded only with the user's consent: stored in `telemetry` and sent as one span.

Any event type is accepted, but what is kept is bounded (size, depth, attribute count), and a
failure to store or export never fails the request: telemetry is best effort by design.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

from opentelemetry import context as otel_context

from services.storage.database import TELEMETRY, Database
from services.core.errors import BadRequest, PayloadTooLarge

log = logging.getLogger(__name__)

EVENT_TYPE_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
MAX_DATA_BYTES = 8 * 1024
MAX_DEPTH = 5
MAX_SPAN_ATTRIBUTES = 64
MAX_ATTRIBUTE_CHARS = 500
NO_CONSENT_MESSAGE = "Telemetry not recorded: the user has not given consent."


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
                           timestamp: dt.datetime | None, user_consent: bool, metrics=None) -> TelemetryResult:
    """With consent: store the event and export it as a span. Without: touch nothing."""
    if metrics is not None:
        metrics.telemetry.labels(consent="yes" if user_consent else "no").inc()
    if not user_consent:
        return TelemetryResult(recorded=False, message=NO_CONSENT_MESSAGE)
    data = clean_data(data or {})
    if len(json.dumps(data, ensure_ascii=False, default=str).encode()) > MAX_DATA_BYTES:
        raise PayloadTooLarge(f"Telemetry data is limited to {MAX_DATA_BYTES} bytes of JSON.")
    received = dt.datetime.now(dt.timezone.utc)
    client_time = timestamp.astimezone(dt.timezone.utc) if timestamp and timestamp.tzinfo else timestamp
    stored = await _store(database, {"event_type": event_type, "data": data, "client_timestamp": client_time,
                                     "received_at": received})
    exported = _export(tracer, event_type, data, client_time)
    if stored or exported:
        return TelemetryResult(recorded=True, message="Telemetry recorded.")
    return TelemetryResult(recorded=False, message="Telemetry accepted but could not be recorded right now.")


async def _store(database: Database, document: dict) -> bool:
    try:
        await database[TELEMETRY].insert_one(document)
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
