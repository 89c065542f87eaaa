"""One canonical JSON line per request, carrying the request id; sampled prediction events."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from model import features as F
from service.config import Settings
from service.main import create_app


def _lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    out = capfd.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_canonical_line_per_request(client: TestClient, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    client.post("/v1/predict", json=F.example_reading(), headers={"X-Request-ID": "log-1"})
    client.post("/v1/predict", json={"nope": 1}, headers={"X-Request-ID": "log-2"})
    lines = [e for e in _lines(capfd) if e.get("event") == "request"]
    assert [e["request_id"] for e in lines] == ["log-1", "log-2"]
    ok, bad = lines
    assert ok["status"] == 200 and bad["status"] == 422
    assert ok["route"] == "/v1/predict"
    assert ok["batch_size"] == 1
    assert isinstance(ok["latency_ms"], float)
    assert ok["model_version"] == bad["model_version"]
    assert {"timestamp", "level"} <= set(ok)


def test_prediction_events_are_sampled(
    service_settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    always = service_settings.model_copy(update={"prediction_log_sample_rate": 1.0})
    with TestClient(create_app(always)) as client:
        capfd.readouterr()
        for _ in range(3):
            client.post("/v1/predict", json=F.example_reading())
        events = [e for e in _lines(capfd) if e.get("event") == "prediction"]
    assert len(events) == 3
    assert events[0]["inputs"] == [F.example_reading()]
    assert "failure_probability" in events[0]["outputs"][0]  # type: ignore[index]
    assert events[0]["request_id"]


def test_errors_log_the_stack_as_a_field(
    service_settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    app = create_app(service_settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    with TestClient(app, raise_server_exceptions=False) as client:
        capfd.readouterr()
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "internal"
    errors = [e for e in _lines(capfd) if e.get("event") == "unhandled_error"]
    assert errors and "exception" in errors[0]
    frames = errors[0]["exception"][0]["frames"]  # type: ignore[index]
    assert any(f["name"] == "boom" for f in frames)


def test_a_failing_model_call_answers_500_without_a_traceback(
    service_settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    app = create_app(service_settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        state = app.state.faultline

        def broken(numeric: object, codes: object) -> object:
            raise RuntimeError("model exploded")

        state.predictor.batcher._call = broken  # what a bug in the model path would look like
        capfd.readouterr()
        response = client.post(
            "/v1/predict", json=F.example_reading(), headers={"X-Request-ID": "boom-1"}
        )
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "internal"
    assert "model exploded" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "boom-1"
    errors = [e for e in _lines(capfd) if e.get("event") == "unhandled_error"]
    assert errors and errors[0]["request_id"] == "boom-1"
    assert "model exploded" in json.dumps(errors[0]["exception"])
