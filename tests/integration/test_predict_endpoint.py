"""The ASGI endpoint answers POST /v1/predict exactly as the FastAPI route it stands in for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from model import features as F
from service.main import create_app
from service.predict_endpoint import PredictEndpoint
from tests.conftest import metric_value
from tests.integration.helpers import scrape

READING = F.example_reading()
CASES: dict[str, dict[str, Any]] = {
    "one reading": {"json": READING},
    "batch": {"json": {"instances": [READING, {**READING, F.TORQUE.name: 70.0}]}},
    "malformed JSON": {"content": b'{"air', "headers": {"content-type": "application/json"}},
    "wrong content type": {"content": b"{}", "headers": {"content-type": "text/plain"}},
    "out of range": {"json": {**READING, F.TORQUE.name: -1.0}},
    "unknown field": {"json": {**READING, "colour": "red"}},
    "string for a number": {"json": {**READING, F.TORQUE.name: "40"}},
    "not an object": {"json": [READING]},
    "empty batch": {"json": {"instances": []}},
    "too large": {"content": b" " * 2_000_000, "headers": {"content-type": "application/json"}},
}


def _client(settings: Any, fast: bool) -> TestClient:
    app = create_app(settings, CollectorRegistry())
    if not fast:  # the FastAPI route alone (the middleware stack is built on first request)
        app.user_middleware = [m for m in app.user_middleware if m.cls is not PredictEndpoint]
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def clients(service_settings: Any) -> Iterator[tuple[TestClient, TestClient]]:
    with _client(service_settings, True) as fast, _client(service_settings, False) as routed:
        yield fast, routed


@pytest.mark.parametrize("case", CASES)
def test_same_answer_as_the_fastapi_route(
    clients: tuple[TestClient, TestClient], case: str
) -> None:
    fast, routed = clients
    headers = {**CASES[case].get("headers", {}), "X-Request-ID": f"same-{len(case)}"}
    kwargs = {**CASES[case], "headers": headers}
    a = fast.post("/v1/predict", **kwargs)
    b = routed.post("/v1/predict", **kwargs)
    assert (a.status_code, a.json()) == (b.status_code, b.json())
    for header in ("content-type", "x-request-id", "retry-after"):
        assert a.headers.get(header) == b.headers.get(header)


def test_both_paths_are_measured_alike(clients: tuple[TestClient, TestClient]) -> None:
    for client in clients:
        client.post("/v1/predict", json={**READING, F.TORQUE.name: -1.0})
        client.post("/v1/predict", json=READING)
        text = scrape(client)
        handler = {"handler": "/v1/predict", "method": "POST"}
        assert metric_value(text, "http_requests_total", status="200", **handler) >= 1
        assert metric_value(text, "http_requests_total", status="422", **handler) >= 1
        assert metric_value(text, "http_request_duration_seconds_count", **handler) >= 2
        assert metric_value(text, "faultline_invalid_requests_total", reason="out_of_range") >= 1
