"""Delivers stored feedback to Phoenix (span annotation) and Arize (annotation DataFrame), retrying with backoff.

The `feedback` collection is the queue: a background task sends every row whose target is
`pending` and due, marks it `delivered` (or re-schedules it with exponential backoff), and at
startup picks up whatever an earlier process left undelivered. Phoenix is called with a stable
annotation `identifier`, so a re-sent or re-rated feedback replaces the annotation instead of adding one.
With several workers (`leases`, SHARED_STATE=mongo) each row is first claimed with one atomic
`find_one_and_update` setting `delivery.<target>.lease_until`, so exactly one worker sends it; a
worker that dies mid-send leaves a lease that expires after LEASE_SECONDS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
from typing import Any

from services.storage.database import FEEDBACK, Database
from services.feedback.records import DELIVERED, PENDING, REJECTED, delivery_targets, utcnow
from services.core.settings import Settings

log = logging.getLogger(__name__)

ANNOTATION_NAME = "user_feedback"
ANNOTATION_IDENTIFIER = "csharp-ai-buddy-user-feedback"
ARIZE_ANNOTATION = "rating"
ARIZE_UPDATED_BY = "website_user"
BATCH = 50
IDLE_POLL_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 10.0
LEASE_SECONDS = 120.0  # longer than any one send (Phoenix: 10 s timeout; Arize: one batch)


class DeliveryError(Exception):
    """The target did not take the feedback this time; try again later."""


class RejectedError(DeliveryError):
    """The target refused the feedback itself (bad request); retrying would not help."""


def score_of(feedback_type: str) -> float:
    return 1.0 if feedback_type == "thumbs_up" else 0.0


def backoff_seconds(attempts: int, *, base: float, maximum: float, jitter: float = 0.1) -> float:
    """base · 2^(attempts-1), capped at maximum, ±jitter so many rows do not retry in lockstep."""
    delay = min(maximum, base * (2 ** max(0, attempts - 1)))
    return max(0.0, delay * (1 + random.uniform(-jitter, jitter)))


def phoenix_annotation(row: dict) -> dict:
    """The body of `POST /v1/span_annotations` for one feedback row."""
    stamp = row.get("timestamp")
    return {"data": [{
        "span_id": row["span_id"],
        "name": ANNOTATION_NAME,
        "annotator_kind": "HUMAN",
        "identifier": ANNOTATION_IDENTIFIER,
        "result": {"label": row["feedback_type"], "score": score_of(row["feedback_type"]),
                   "explanation": row.get("comment") or None},
        "metadata": {"source": "csharp-ai-buddy", "conversation_id": row.get("conversation_id"),
                     "rated_at": stamp.isoformat() if stamp else None},
    }]}


def arize_annotations_frame(rows: list[dict]):
    """The pandas DataFrame Arize's annotation API takes: one row per rated span."""
    import pandas as pd

    records = []
    for row in rows:
        stamp = row.get("timestamp")
        records.append({
            "context.span_id": row["span_id"],
            f"annotation.{ARIZE_ANNOTATION}.label": row["feedback_type"],
            f"annotation.{ARIZE_ANNOTATION}.score": score_of(row["feedback_type"]),
            f"annotation.{ARIZE_ANNOTATION}.updated_by": ARIZE_UPDATED_BY,
            f"annotation.{ARIZE_ANNOTATION}.updated_at": int(stamp.timestamp() * 1000) if stamp else None,
            "annotation.notes": row.get("comment") or None,
        })
    return pd.DataFrame.from_records(records, columns=[
        "context.span_id", f"annotation.{ARIZE_ANNOTATION}.label", f"annotation.{ARIZE_ANNOTATION}.score",
        f"annotation.{ARIZE_ANNOTATION}.updated_by", f"annotation.{ARIZE_ANNOTATION}.updated_at", "annotation.notes"])


async def send_to_phoenix(*, http, base_url: str, api_key: str | None, row: dict) -> str | None:
    """POST the annotation synchronously; returns Phoenix's annotation id."""
    import aiohttp

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with http.post(f"{base_url}/v1/span_annotations", params={"sync": "true"}, json=phoenix_annotation(row),
                             headers=headers, timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS)) as response:
            status, text = response.status, await response.text()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise DeliveryError(f"Phoenix unreachable: {type(exc).__name__}: {exc}"[:300]) from None
    if status == 200:
        try:
            return (json.loads(text).get("data") or [{}])[0].get("id")
        except (ValueError, AttributeError, IndexError):
            return None
    # 404: the span has not arrived (yet) — retried; 400/422: our payload is wrong — retrying cannot help.
    error = RejectedError if status in (400, 422) else DeliveryError
    raise error(f"Phoenix answered HTTP {status}: {text[:200]}")


def send_to_arize(*, settings: Settings, rows: list[dict]) -> None:
    """Log the annotations with the `arize` SDK (optional dependency; blocking, so run it in a thread)."""
    frame = arize_annotations_frame(rows)
    try:
        from arize import ArizeClient  # arize >= 8
    except ImportError:
        ArizeClient = None
    if ArizeClient is not None:
        client = ArizeClient(api_key=settings.arize_api_key)
        client.spans.update_annotations(space_id=settings.arize_space_id, project_name=settings.arize_project_name,
                                        dataframe=frame)
        return
    try:
        from arize.pandas.logger import Client  # arize 7.x
    except ImportError:
        raise DeliveryError("the `arize` package is not installed (pip install arize) — feedback kept for later") from None
    response = Client(space_id=settings.arize_space_id, api_key=settings.arize_api_key).log_annotations(
        dataframe=frame, project_name=settings.arize_project_name)
    if getattr(response, "status_code", 200) != 200:
        raise DeliveryError(f"Arize answered HTTP {response.status_code}")


class FeedbackDelivery:
    """The background task that empties the feedback queue; `wake()` after storing a new rating."""

    def __init__(self, *, database: Database, settings: Settings, http: Any, phoenix_url: str | None,
                 metrics: Any = None, leases: bool = False) -> None:
        self.database = database
        self.leases = leases
        self.settings = settings
        self.http = http
        self.phoenix_url = phoenix_url
        self.metrics = metrics
        self.targets = [t for t in delivery_targets(settings) if t != "phoenix" or phoenix_url]
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self.targets and self._task is None:
            self._task = asyncio.create_task(self._run(), name="feedback-delivery")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def _run(self) -> None:
        startup = True
        while True:
            self._wake.clear()  # before the pass: a wake during it makes the wait below return at once
            try:
                next_due = await self.deliver_due(everything=startup)
                startup = False
            except asyncio.CancelledError:
                raise
            except Exception:  # the store may be briefly unavailable; try again later, never die
                log.exception("feedback delivery pass failed")
                next_due = utcnow() + dt.timedelta(seconds=self.settings.feedback_retry_base_seconds)
            await self._refresh_gauge()
            wait = IDLE_POLL_SECONDS if next_due is None else (next_due - utcnow()).total_seconds()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(IDLE_POLL_SECONDS, max(0.05, wait)))
            except asyncio.TimeoutError:
                pass

    async def deliver_due(self, *, everything: bool = False) -> dt.datetime | None:
        """Send what is due (or, at startup, everything pending); return when the next row falls due."""
        collection = self.database[FEEDBACK]
        for target in self.targets:
            query: dict = {f"delivery.{target}.state": PENDING}
            if not everything:
                query[f"delivery.{target}.next_attempt_at"] = {"$lte": utcnow()}
            if self.leases:
                rows = await self._claim(target, query)
            else:
                rows = await collection.find(query).sort(f"delivery.{target}.next_attempt_at", 1).limit(BATCH).to_list()
            if target == "phoenix":
                for row in rows:
                    await self._deliver(target, [row])
            elif rows:
                await self._deliver(target, rows)
            if len(rows) == BATCH:
                return utcnow()  # more waiting: go again straight away
        return await self._next_due()

    def _unleased(self, target: str) -> dict:
        """Rows no worker holds now (no lease, or an expired one); everything without leases."""
        if not self.leases:
            return {}
        lease = f"delivery.{target}.lease_until"
        return {"$or": [{lease: None}, {lease: {"$lte": utcnow()}}]}

    async def _claim(self, target: str, query: dict) -> list[dict]:
        """Claim up to BATCH due rows, one atomic update each: a row claimed here is no other worker's."""
        rows = []
        field = f"delivery.{target}.next_attempt_at"
        for _ in range(BATCH):
            lease = {"$set": {f"delivery.{target}.lease_until": utcnow() + dt.timedelta(seconds=LEASE_SECONDS)}}
            row = await self.database[FEEDBACK].find_one_and_update({**query, **self._unleased(target)}, lease,
                                                                    sort=[(field, 1)])
            if row is None:
                break
            rows.append(row)
        return rows

    async def _next_due(self) -> dt.datetime | None:
        soonest = None
        for target in self.targets:
            field = f"delivery.{target}.next_attempt_at"
            query = {f"delivery.{target}.state": PENDING, **self._unleased(target)}
            rows = await self.database[FEEDBACK].find(query).sort(field, 1).limit(1).to_list()
            if rows and rows[0]["delivery"][target].get("next_attempt_at"):
                due = rows[0]["delivery"][target]["next_attempt_at"]
                soonest = due if soonest is None else min(soonest, due)
        return soonest

    async def _deliver(self, target: str, rows: list[dict]) -> None:
        try:
            if target == "phoenix":
                await send_to_phoenix(http=self.http, base_url=self.phoenix_url, api_key=self.settings.phoenix_api_key,
                                      row=rows[0])
            else:
                await asyncio.to_thread(send_to_arize, settings=self.settings, rows=rows)
            outcome, error = DELIVERED, None
        except RejectedError as exc:
            outcome, error = REJECTED, str(exc)
        except Exception as exc:  # anything else is worth another try later
            outcome, error = PENDING, (str(exc) or type(exc).__name__)[:300]
        for row in rows:
            await self._record(target, row, outcome, error)

    async def _record(self, target: str, row: dict, outcome: str, error: str | None) -> None:
        state = row["delivery"][target]
        attempts = int(state.get("attempts", 0)) + 1
        now = utcnow()
        prefix = f"delivery.{target}"
        update = {f"{prefix}.state": outcome, f"{prefix}.attempts": attempts, f"{prefix}.last_error": error}
        if self.leases:
            update[f"{prefix}.lease_until"] = None
        if outcome == PENDING:
            delay = backoff_seconds(attempts, base=self.settings.feedback_retry_base_seconds,
                                    maximum=self.settings.feedback_retry_max_seconds)
            update[f"{prefix}.next_attempt_at"] = now + dt.timedelta(seconds=delay)
            log.info("feedback for span %s not delivered to %s (attempt %d, retry in %.1fs): %s",
                     row["span_id"], target, attempts, delay, error)
        else:
            update[f"{prefix}.next_attempt_at"] = None
            if outcome == DELIVERED:
                update[f"{prefix}.delivered_at"] = now
            else:
                log.warning("feedback for span %s rejected by %s: %s", row["span_id"], target, error)
        # Matching the revision: a rating replaced meanwhile stays pending and is sent next.
        await self.database[FEEDBACK].update_one({"_id": row["_id"], "revision": row.get("revision")}, {"$set": update})
        if self.metrics is not None:
            self.metrics.feedback_deliveries.labels(target=target, outcome=outcome if outcome != PENDING else "retry").inc()

    async def _refresh_gauge(self) -> None:
        if self.metrics is None:
            return
        for target in self.targets:
            try:
                count = await self.database[FEEDBACK].count_documents({f"delivery.{target}.state": PENDING})
            except Exception:
                continue
            self.metrics.feedback_pending.labels(target=target).set(count)


async def open_feedback_delivery(*, database: Database, settings: Settings, http: Any, phoenix_url: str | None,
                                 metrics: Any = None) -> FeedbackDelivery:
    """Create the delivery indexes and start the task (it first sends whatever earlier runs left pending)."""
    from services.feedback.records import ensure_feedback_indexes

    delivery = FeedbackDelivery(database=database, settings=settings, http=http, phoenix_url=phoenix_url, metrics=metrics,
                                leases=settings.uses_shared_state)
    await ensure_feedback_indexes(database, delivery.targets)
    delivery.start()
    return delivery
