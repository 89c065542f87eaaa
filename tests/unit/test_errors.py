"""The error-answer builders: status, the one JSON body, headers, and what they count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from service import errors as E
from service.config import Settings
from service.metrics import ServiceMetrics
from service.state import AppState

SUBCLASSES = [
    (E.InvalidInputError, 422, "invalid_input"),
    (E.MalformedJSONError, 400, "malformed_json"),
    (E.UnsupportedMediaTypeError, 415, "unsupported_media_type"),
    (E.PayloadTooLargeError, 413, "body_too_large"),
    (E.ModelNotReadyError, 503, "model_not_ready"),
    (E.InjectedFaultError, 503, "injected_fault"),
    (E.ServiceError, 500, "internal"),
]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def state(tmp_path: Path, registry: CollectorRegistry) -> AppState:
    """An app's state with its own registry and no model loaded."""
    return AppState(Settings(model_dir=tmp_path), ServiceMetrics(registry), TypeAdapter(Any))


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def error_of(body: bytes) -> dict[str, Any]:
    """The body is exactly {"error": {"type", "message", "details"}}."""
    parsed = json.loads(body)
    assert set(parsed) == {"error"} and set(parsed["error"]) == {"type", "message", "details"}
    return dict(parsed["error"])


@pytest.mark.parametrize(("cls", "status", "type_"), SUBCLASSES)
def test_each_service_error_carries_its_status_and_type(
    cls: type[E.ServiceError], status: int, type_: str
) -> None:
    exc = cls("what went wrong", details=[{"loc": ["torque_nm"]}])
    code, body, headers = E.service_error_answer(None, exc)
    assert code == status
    assert error_of(body) == {
        "type": type_,
        "message": "what went wrong",
        "details": [{"loc": ["torque_nm"]}],
    }
    # 503s tell the client when to come back; nothing else adds a header
    assert headers == ([("Retry-After", "5")] if status == 503 else [])
    assert exc.reasons == [(type_, "body")]  # the default metrics label pair


def test_client_errors_count_their_reasons(state: AppState, registry: CollectorRegistry) -> None:
    exc = E.InvalidInputError(
        "bad", reasons=[("out_of_range", "torque_nm"), ("missing_field", "tool_wear_min")]
    )
    E.service_error_answer(state, exc)
    E.service_error_answer(state, E.MalformedJSONError("not JSON"))
    count = "faultline_invalid_requests_total"
    labels = {"model_version": "none"}
    assert sample(registry, count, **labels, reason="out_of_range", field="torque_nm") == 1
    assert sample(registry, count, **labels, reason="missing_field", field="tool_wear_min") == 1
    assert sample(registry, count, **labels, reason="malformed_json", field="body") == 1


@pytest.mark.parametrize("cls", [E.ModelNotReadyError, E.InjectedFaultError, E.ServiceError])
def test_server_side_errors_are_not_counted_as_rejected_input(
    state: AppState, registry: CollectorRegistry, cls: type[E.ServiceError]
) -> None:
    E.service_error_answer(state, cls("down"))
    [invalid] = [f for f in registry.collect() if f.name == "faultline_invalid_requests"]
    assert [s for s in invalid.samples if s.name.endswith("_total")] == []


def test_an_unexpected_error_answers_without_its_text_and_logs_the_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "password=hunter2 at /srv/model.skops"
    try:
        raise ValueError(secret)
    except ValueError as raised:
        error = raised
    with structlog.testing.capture_logs() as logs:
        # a fresh logger: the module's may be cached (cache_logger_on_first_use) with the
        # processors of an app an earlier test built, and would bypass the capture
        monkeypatch.setattr(E, "log", structlog.get_logger("faultline.errors"))
        body = E.unexpected_error_answer(error)
    assert error_of(body) == {"type": "internal", "message": E.INTERNAL_MESSAGE, "details": None}
    for leak in (secret, "Traceback", "ValueError", "hunter2"):
        assert leak not in body.decode()
    [entry] = logs
    assert entry["event"] == "unhandled_error" and entry["log_level"] == "error"
    assert entry["exc_info"] is error  # the stack goes to the log, with the request id


def test_a_gone_client_is_499_and_counted(state: AppState, registry: CollectorRegistry) -> None:
    assert E.client_gone_status(state, {"state": {}}) == E.CLIENT_CLOSED == 499
    assert E.client_gone_status(state, {}) == 499
    assert sample(registry, "faultline_client_disconnects_total", model_version="none") == 2
    assert E.client_gone_status(None, {}) == 499  # before the app state exists


def test_a_request_the_guard_answered_keeps_that_status_uncounted(
    state: AppState, registry: CollectorRegistry
) -> None:
    assert E.client_gone_status(state, {"state": {E.ABORTED: 413}}) == 413
    assert sample(registry, "faultline_client_disconnects_total", model_version="none") == 0


def test_the_client_closed_body_has_the_one_shape() -> None:
    assert error_of(E.CLIENT_CLOSED_BODY)["type"] == "client_closed_request"


def test_error_response_builds_the_one_body_with_extra_headers() -> None:
    response = E.error_response(429, "too_many", "slow down", {"n": 1}, {"Retry-After": "1"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert error_of(response.body) == {
        "type": "too_many",
        "message": "slow down",
        "details": {"n": 1},
    }


def test_the_handlers_map_every_exception_to_the_json_body(
    state: AppState, registry: CollectorRegistry
) -> None:
    """A bare app with the handlers (no model): each kind of failure gets the one body."""
    app = FastAPI()
    app.state.faultline = state
    E.install_handlers(app)

    @app.get("/invalid")
    def invalid() -> None:
        raise E.InvalidInputError("bad reading", reasons=[("out_of_range", "torque_nm")])

    @app.get("/not-ready")
    def not_ready() -> None:
        raise E.ModelNotReadyError("loading")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/typed/{n}")
    def typed(n: int) -> None:
        return None

    with TestClient(app, raise_server_exceptions=False) as client:
        answers = {path: client.get(path) for path in ("/invalid", "/not-ready", "/boom")}
        answers["/typed/x"] = client.get("/typed/x")
        answers["/nowhere"] = client.get("/nowhere")
        answers["/boom (POST)"] = client.post("/boom")
    expected = {
        "/invalid": (422, "invalid_input"),
        "/not-ready": (503, "model_not_ready"),
        "/boom": (500, "internal"),
        "/typed/x": (422, "invalid_input"),
        "/nowhere": (404, "not_found"),
        "/boom (POST)": (405, "method_not_allowed"),
    }
    for path, (status, type_) in expected.items():
        response = answers[path]
        assert response.status_code == status, path
        assert response.headers["content-type"] == "application/json", path
        assert error_of(response.content)["type"] == type_, path
    assert answers["/not-ready"].headers["retry-after"] == "5"
    assert "secret" not in answers["/boom"].text
    labels = {"model_version": "none", "reason": "out_of_range", "field": "torque_nm"}
    assert sample(registry, "faultline_invalid_requests_total", **labels) == 1
