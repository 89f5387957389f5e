"""POST /api/telemetry: recorded (stored + span in a real Phoenix) only with consent; bounded; never fails."""

from __future__ import annotations

import uuid

import pytest

from services.storage.database import TELEMETRY
from tests.utils.app import quick_settings, running_app
from tests.utils.phoenix import app_services, eventually

EVENT = {"event_type": "page_view",
         "data": {"page": "/chat", "count": 3, "ratio": 0.5, "ok": True, "nested": {"theme": "dark"},
                  "tags": ["a", "b"], "$where.key": "x", "huge": 10**30},
         "timestamp": "2026-01-02T03:04:05Z", "user_consent": True}


def telemetry_settings(tmp_path, phoenix):
    return quick_settings(tmp_path, phoenix_collector_endpoint=phoenix.url,
                          phoenix_project_name=f"telemetry-{uuid.uuid4().hex[:10]}")


@pytest.mark.phoenix
async def test_consent_records_and_exports_no_consent_touches_nothing(tmp_path, phoenix_server):
    settings = telemetry_settings(tmp_path, phoenix_server)
    project = settings.phoenix_project_name
    async with running_app(settings) as client:
        services = app_services(client)
        for consent in (False, None):  # refused, then not given at all
            payload = {"event_type": "secret_event", "data": {"page": "/private"}}
            if consent is not None:
                payload["user_consent"] = consent
            response = await client.post("/api/telemetry", json=payload)
            assert response.status_code == 200
            body = response.json()
            assert body["success"] is True and body["recorded"] is False
            assert "consent" in body["message"]
        assert await services.database[TELEMETRY].count_documents({}) == 0

        response = await client.post("/api/telemetry", json=EVENT)
        assert response.status_code == 200
        assert response.json() == {"success": True, "recorded": True, "message": "Telemetry recorded."}
        (doc,) = await services.database[TELEMETRY].find({}).to_list()
        assert doc["event_type"] == "page_view"
        assert doc["data"]["page"] == "/chat" and doc["data"]["nested"] == {"theme": "dark"}
        assert doc["data"]["_where_key"] == "x"  # no operator or dotted keys reach the store
        assert doc["data"]["huge"] == str(10**30)
        assert doc["client_timestamp"].year == 2026 and doc["received_at"]
        assert services.tracing.provider.force_flush(timeout_millis=10_000)

    spans = await eventually(lambda: phoenix_server.spans(project))
    assert [s["name"] for s in spans] == ["telemetry.page_view"]  # and no span for the refused events
    attributes = spans[0]["attributes"]
    assert attributes["event_type"] == "page_view"
    assert attributes["event_data.page"] == "/chat"
    assert attributes["event_data.count"] == 3 and attributes["event_data.ratio"] == 0.5
    assert attributes["event_data.ok"] is True
    assert attributes["event_data.nested.theme"] == "dark"
    assert "event_data.tags" not in attributes  # scalars only
    assert not spans[0].get("parent_id")


async def test_telemetry_is_bounded(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        too_big = {"event_type": "x", "data": {"blob": "y" * 9000}, "user_consent": True}
        response = await client.post("/api/telemetry", json=too_big)
        assert response.status_code == 413
        assert "8192 bytes" in response.json()["detail"]

        deep: dict = {"v": 1}
        for _ in range(6):
            deep = {"d": deep}
        response = await client.post("/api/telemetry", json={"event_type": "x", "data": deep, "user_consent": True})
        assert response.status_code == 400

        for event_type in ("", "has space", "x" * 65, "<script>"):
            response = await client.post("/api/telemetry", json={"event_type": event_type, "user_consent": True})
            assert response.status_code == 422, event_type
        response = await client.post("/api/telemetry", json={"event_type": "x", "data": [1, 2], "user_consent": True})
        assert response.status_code == 422
        response = await client.post("/api/telemetry", json={"event_type": "x", "timestamp": "yesterday",
                                                             "user_consent": True})
        assert response.status_code == 422
        assert await app_services(client).database[TELEMETRY].count_documents({}) == 0

        # Unknown event types are fine as long as they are bounded.
        response = await client.post("/api/telemetry", json={"event_type": "brand_new:event-v2", "user_consent": True})
        assert response.json()["recorded"] is True


async def test_a_storage_failure_does_not_fail_the_request(tmp_path):
    async with running_app(quick_settings(tmp_path)) as client:
        telemetry = app_services(client).database[TELEMETRY]
        # A real write failure: a unique index the second identical event violates.
        await telemetry.create_index("event_type", unique=True)
        for _ in range(2):
            response = await client.post("/api/telemetry", json={"event_type": "dup", "user_consent": True})
            assert response.status_code == 200 and response.json()["success"] is True
        assert await telemetry.count_documents({}) == 1
