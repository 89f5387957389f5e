"""POST /api/feedback: validation, durable storage, re-rating, delivery state, and the Arize DataFrame."""

from __future__ import annotations

import datetime as dt

from services.storage.database import FEEDBACK
from services.feedback.delivery import arize_annotations_frame, backoff_seconds, phoenix_annotation
from tests.utils.app import CHAT_QUESTION, chat_lines, copy_seeded_data_dir, quick_settings, running_app
from tests.utils.phoenix import app_services, eventually, free_port

SPAN = "0123456789abcdef"


async def stored(client, span_id: str) -> dict | None:
    return await app_services(client).database[FEEDBACK].find_one({"_id": span_id})


INVALID = [
    {"span_id": "0123456789abcde", "feedback_type": "thumbs_up"},          # 15 chars
    {"span_id": "0123456789abcdef0", "feedback_type": "thumbs_up"},        # 17 chars
    {"span_id": "0123456789abcdeg", "feedback_type": "thumbs_up"},         # not hex
    {"span_id": "", "feedback_type": "thumbs_up"},
    {"span_id": 1234567890123456, "feedback_type": "thumbs_up"},
    {"feedback_type": "thumbs_up"},
    {"span_id": SPAN, "feedback_type": "meh"},
    {"span_id": SPAN, "feedback_type": "THUMBS_UP"},
    {"span_id": SPAN},
    {"span_id": SPAN, "feedback_type": "thumbs_up", "comment": "x" * 2001},
]


async def test_invalid_feedback_is_a_422_and_stores_nothing(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        for payload in INVALID:
            response = await client.post("/api/feedback", json=payload)
            assert response.status_code == 422, payload
            assert isinstance(response.json()["detail"], list), payload
        response = await client.post("/api/feedback", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert await app_services(client).database[FEEDBACK].count_documents({}) == 0


async def test_feedback_on_a_chat_is_stored_with_its_conversation(tmp_path, seeded_data_dir):
    copy_seeded_data_dir(tmp_path / "data", seeded_data_dir)
    async with running_app(quick_settings(tmp_path)) as client:
        status, lines = await chat_lines(client, {"message": CHAT_QUESTION})
        assert status == 200
        span_id, conversation_id = lines[0]["span_id"], lines[0]["conversation_id"]

        response = await client.post("/api/feedback", json={"span_id": span_id.upper(), "feedback_type": "thumbs_up",
                                                            "comment": "x" * 2000})
        assert response.status_code == 200
        assert response.json() == {"success": True, "message": "Thank you for your feedback!"}
        row = await stored(client, span_id)
        assert row["span_id"] == span_id  # upper-case hex accepted, stored lower-case
        assert row["conversation_id"] == conversation_id
        assert row["feedback_type"] == "thumbs_up" and len(row["comment"]) == 2000
        assert isinstance(row["timestamp"], dt.datetime)
        assert row["delivery"] == {}  # no Phoenix/Arize configured: stored, nothing to deliver


async def test_re_rating_replaces_the_earlier_rating(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        for kind, comment in (("thumbs_up", "good"), ("thumbs_down", None)):
            response = await client.post("/api/feedback", json={"span_id": SPAN, "feedback_type": kind, "comment": comment})
            assert response.status_code == 200
        rows = await app_services(client).database[FEEDBACK].find({"span_id": SPAN}).to_list()
        assert len(rows) == 1
        assert rows[0]["feedback_type"] == "thumbs_down" and rows[0]["comment"] is None
        assert rows[0]["revision"] == 2
        assert rows[0]["conversation_id"] is None  # unknown span: still stored


async def test_feedback_for_a_down_backend_is_pending_with_backoff(tmp_path):
    # A port nothing listens on: every attempt fails, the row stays pending with growing delays.
    settings = quick_settings(tmp_path, phoenix_collector_endpoint=f"http://127.0.0.1:{free_port()}",
                             feedback_retry_base_seconds=0.1, feedback_retry_max_seconds=0.4)
    async with running_app(settings) as client:
        response = await client.post("/api/feedback", json={"span_id": SPAN, "feedback_type": "thumbs_up"})
        assert response.status_code == 200

        async def retried():
            row = await stored(client, SPAN)
            return row if row["delivery"]["phoenix"]["attempts"] >= 3 else None

        row = await eventually(retried, timeout=10)
        state = row["delivery"]["phoenix"]
        assert state["state"] == "pending" and "unreachable" in state["last_error"]
        metrics = (await client.get("/metrics")).text
        assert 'feedback_received_total{feedback_type="thumbs_up"} 1.0' in metrics
        assert 'feedback_undelivered{target="phoenix"} 1.0' in metrics


def test_backoff_grows_exponentially_up_to_the_cap():
    delays = [backoff_seconds(n, base=2, maximum=300, jitter=0) for n in range(1, 11)]
    assert delays[:5] == [2, 4, 8, 16, 32]
    assert max(delays) == 300 and delays[-1] == 300
    assert all(1.8 <= backoff_seconds(1, base=2, maximum=300) <= 2.2 for _ in range(50))


ROW = {"_id": SPAN, "span_id": SPAN, "feedback_type": "thumbs_down", "comment": "Wrong package name",
       "conversation_id": "c0ffee00", "timestamp": dt.datetime(2026, 1, 2, 3, 4, 5)}


def test_phoenix_annotation_body():
    body = phoenix_annotation(ROW)
    (item,) = body["data"]
    assert item["span_id"] == SPAN and item["annotator_kind"] == "HUMAN"
    assert item["identifier"] and item["name"] == "user_feedback"
    assert item["result"] == {"label": "thumbs_down", "score": 0.0, "explanation": "Wrong package name"}
    assert item["metadata"]["conversation_id"] == "c0ffee00"


def test_arize_dataframe_has_the_columns_arize_expects():
    up = {**ROW, "span_id": "fedcba9876543210", "feedback_type": "thumbs_up", "comment": None}
    frame = arize_annotations_frame([ROW, up])
    assert list(frame.columns) == ["context.span_id", "annotation.rating.label", "annotation.rating.score",
                                   "annotation.rating.updated_by", "annotation.rating.updated_at", "annotation.notes"]
    assert frame["context.span_id"].tolist() == [SPAN, "fedcba9876543210"]
    assert frame["annotation.rating.label"].tolist() == ["thumbs_down", "thumbs_up"]
    assert frame["annotation.rating.score"].tolist() == [0.0, 1.0]
    assert set(frame["annotation.rating.updated_by"]) == {"website_user"}
    assert frame["annotation.rating.updated_at"].tolist()[0] == int(
        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert frame["annotation.notes"].tolist()[0] == "Wrong package name"
    assert frame["annotation.notes"].isna().tolist() == [False, True]


async def test_arize_target_is_queued_and_kept_when_the_sdk_is_missing(tmp_path):
    # Arize configured, the optional `arize` SDK absent here: feedback is stored, pending, never lost.
    settings = quick_settings(tmp_path, arize_space_id="space", arize_api_key="key",
                             feedback_retry_base_seconds=0.1, feedback_retry_max_seconds=0.2)
    async with running_app(settings) as client:
        assert "arize" in app_services(client).tracing.exporters
        response = await client.post("/api/feedback", json={"span_id": SPAN, "feedback_type": "thumbs_up"})
        assert response.status_code == 200

        async def tried():
            row = await stored(client, SPAN)
            return row if row["delivery"]["arize"]["attempts"] >= 1 else None

        row = await eventually(tried, timeout=10)
        assert row["delivery"]["arize"]["state"] == "pending"
        assert row["delivery"]["arize"]["last_error"]
