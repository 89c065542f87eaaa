"""POST /v1/predict has one implementation (the plain-ASGI PredictEndpoint); the FastAPI route
only declares the operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from model import features as F
from service.main import create_app
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


EXPECTED = {
    "one reading": 200,
    "batch": 200,
    "malformed JSON": 400,
    "wrong content type": 415,
    "out of range": 422,
    "unknown field": 422,
    "string for a number": 422,
    "not an object": 422,
    "empty batch": 422,
    "too large": 413,
}


@pytest.fixture(scope="module")
def client(service_settings: Any) -> Iterator[TestClient]:
    app = create_app(service_settings, CollectorRegistry())
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("case", CASES)
def test_every_answer_comes_from_the_one_predict_path(client: TestClient, case: str) -> None:
    headers = {**CASES[case].get("headers", {}), "X-Request-ID": f"one-{len(case)}"}
    answer = client.post("/v1/predict", **{**CASES[case], "headers": headers})
    assert answer.status_code == EXPECTED[case]
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-request-id"] == headers["X-Request-ID"]
    body = answer.json()
    assert ("predictions" in body) if answer.status_code == 200 else ("error" in body)


def test_the_fastapi_route_only_declares_the_operation(client: TestClient) -> None:
    """One predict path: the route's body never runs (it raises), yet POST answers, other
    methods get the router's 405 and the operation is in the OpenAPI document."""
    import asyncio

    route = next(r for r in client.app.routes if getattr(r, "path", "") == "/v1/predict")
    with pytest.raises(RuntimeError, match="PredictEndpoint"):
        asyncio.run(route.endpoint(READING))  # type: ignore[attr-defined]
    assert client.post("/v1/predict", json=READING).status_code == 200
    assert client.get("/v1/predict").status_code == 405
    operation = client.app.openapi()["paths"]["/v1/predict"]["post"]  # type: ignore[attr-defined]
    assert "200" in operation["responses"] and "requestBody" in operation


def test_the_predict_path_is_measured_like_a_route(client: TestClient) -> None:
    client.post("/v1/predict", json={**READING, F.TORQUE.name: -1.0})
    client.post("/v1/predict", json=READING)
    text = scrape(client)
    handler = {"handler": "/v1/predict", "method": "POST"}
    assert metric_value(text, "http_requests_total", status="200", **handler) >= 1
    assert metric_value(text, "http_requests_total", status="422", **handler) >= 1
    assert metric_value(text, "http_request_duration_seconds_count", **handler) >= 2
    assert metric_value(text, "faultline_invalid_requests_total", reason="out_of_range") >= 1


def test_routes_are_the_apps_own_and_the_hot_ones_first(client: TestClient) -> None:
    """prometheus-fastapi-instrumentator resolves every request's route template by walking
    the app's routes, flattening each included router anew: the OIP router cost +59 Python
    calls per /v1/predict request when it was included. No included routers, hot routes first."""
    routes = client.app.routes  # type: ignore[attr-defined]
    assert not [r for r in routes if callable(getattr(r, "effective_route_contexts", None))]
    paths = [getattr(r, "path", "") for r in routes]
    assert paths[:3] == [
        "/v1/predict",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    ]
