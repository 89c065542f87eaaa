"""Bounded validation (service.validation) and API-key checks (service.auth), without a model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from model import features as F
from service.auth import ApiKeyAuth
from service.errors import InvalidInputError
from service.schemas import READING, batch_adapter
from service.validation import MAX_DETAILS, validate_readings

GOOD = F.example_reading()
BATCH = batch_adapter(1000)


def _refused(payload: dict[str, Any]) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        validate_readings(payload, READING, BATCH, 1000)
    return caught.value


def test_valid_bodies_pass_unchanged() -> None:
    assert validate_readings(GOOD, READING, BATCH, 1000) == [GOOD]
    assert validate_readings({"instances": [GOOD] * 3}, READING, BATCH, 1000) == [GOOD] * 3


def test_unknown_keys_stop_at_the_cap_and_are_labelled_unknown() -> None:
    error = _refused({"instances": [{**GOOD, **{f"k{i}": 0 for i in range(80)}}] * 1000})
    assert len(error.details) == MAX_DETAILS
    assert error.reasons == [("unknown_field", "unknown")]
    assert error.message.startswith(f"{MAX_DETAILS}+ invalid value(s); first: instances.0.k0")


def test_each_problem_keeps_its_location_and_reason() -> None:
    bad = {**GOOD, F.TORQUE.name: -1.0}
    missing = {k: v for k, v in GOOD.items() if k != F.TOOL_WEAR.name}
    error = _refused({"instances": [GOOD, bad, missing, "text"]})
    assert [(d["loc"], d["reason"]) for d in error.details] == [
        (["instances", "1", F.TORQUE.name], "out_of_range"),
        (["instances", "2", F.TOOL_WEAR.name], "missing_field"),
        (["instances", "3"], "wrong_type"),
    ]
    assert ("out_of_range", F.TORQUE.name) in error.reasons


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"instances": []}, "empty_batch"),
        ({"instances": [GOOD] * 1001}, "batch_too_large"),
        ({"instances": GOOD}, "wrong_type"),
        ({"instances": [GOOD], "extra": 1}, "unknown_field"),
        ({**GOOD, "x" * 10_000: 1}, "unknown_field"),
    ],
)
def test_batch_level_problems(payload: dict[str, Any], reason: str) -> None:
    error = _refused(payload)
    assert error.details[0]["reason"] == reason
    assert all(len(part) <= 100 for d in error.details for part in d["loc"])


Headers = list[tuple[bytes, bytes]]


def _call(app: ApiKeyAuth, path: str, headers: Headers) -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": headers, "method": "GET"}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    return sent[0]["status"], dict(sent[0].get("headers", []))


def test_api_keys_guard_v1_only() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    failures = Counter("f", "f", ["reason"], registry=CollectorRegistry())
    guard = ApiKeyAuth(inner, ["k" * 20, "second-key-000000000"], failures)
    assert _call(guard, "/healthz", [])[0] == 200
    assert _call(guard, "/v1/model", [(b"x-api-key", b"k" * 20)])[0] == 200
    assert _call(guard, "/v1/model", [(b"authorization", b"Bearer second-key-000000000")])[0] == 200
    status, headers = _call(guard, "/v1/predict", [(b"authorization", b"Bearer " + b"k" * 19)])
    assert status == 401 and headers[b"www-authenticate"].startswith(b"Bearer")
    assert _call(guard, "/v1/predict", [])[0] == 401
    assert failures.labels("invalid")._value.get() == 1
    assert failures.labels("missing")._value.get() == 1
