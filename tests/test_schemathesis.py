"""Property-based fuzzing of every operation in the app's OpenAPI schema (schemathesis 4).

A real server (uvicorn on a loopback port, on its own thread) with the seeded knowledge base and the
offline model; generated requests, valid and invalid, must never get a 5xx or a response that breaks
the schema (body, content type, documented status codes). Examples are bounded so the run stays short.
`POST /api/chat` is included: its 200 is NDJSON, which schemathesis checks by content type.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from tests.utils.app import build_app, copy_seeded_data_dir, free_port, make_settings

pytestmark = pytest.mark.slow  # a live uvicorn server and ~20 s of generated requests
MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, seeded_data_dir):
    import uvicorn

    root = tmp_path_factory.mktemp("schemathesis")
    copy_seeded_data_dir(root / "data", seeded_data_dir)
    closed = f"http://127.0.0.1:{free_port()}/"  # NuGet lookups fail fast on loopback: no internet in tests
    app = build_app(make_settings(root, nuget_search_urls=[closed + "query"], nuget_registration_url=closed,
                                  nuget_flat_container_url=closed))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(18000):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.01)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(60)


@pytest.fixture(scope="module")
def api_schema(base_url):
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(checks=CHECKS, timeout=60)
