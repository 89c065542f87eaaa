"""The service's explainer client: what each explainer answer or failure becomes for the client
(httpx.MockTransport in place of the explainer; no processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from model import features as F
from service.errors import ServiceError
from service.explainer_client import MODEL_VERSION_HEADER, ExplainerProxy

VERSION = "v-service"
READINGS = [F.example_reading(), F.example_reading()]


def explanation(version: str = VERSION, n: int = 2) -> dict[str, Any]:
    row = {"failure_probability": 0.1, "raw_score": -2.0, "attributions": {}}
    return {"model_version": version, "request_id": "r", "explanations": [row] * n}


def error(status: int, type_: str, message: str, details: Any = None) -> httpx.Response:
    body = {"error": {"type": type_, "message": message, "details": details}}
    return httpx.Response(status, json=body)


def call(handler: Callable[[httpx.Request], Any], timeout: float = 2.0) -> bytes:
    async def run() -> bytes:
        proxy = ExplainerProxy("http://explainer:8001/", timeout, 2, httpx.MockTransport(handler))
        try:
            return await proxy.explain(READINGS, VERSION, "req-1")
        finally:
            await proxy.aclose()

    return asyncio.run(run())


def test_forwards_the_validated_readings_with_request_id_and_expected_version() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=explanation())

    assert orjson.loads(call(handler)) == explanation()
    (request,) = seen
    assert str(request.url) == "http://explainer:8001/v1/explain"
    assert request.headers["x-request-id"] == "req-1"
    assert request.headers[MODEL_VERSION_HEADER] == VERSION
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content) == {"instances": READINGS}


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


async def _slow(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(5)
    return httpx.Response(200, json=explanation())


CASES: list[tuple[str, Callable[[httpx.Request], Any], int, str]] = [
    (
        "another version answered",
        lambda r: httpx.Response(200, json=explanation("v-other")),
        503,
        "explainer_version_mismatch",
    ),
    (
        "explainer refuses the version",
        lambda r: error(409, "model_version_mismatch", "serves v-other"),
        503,
        "explainer_version_mismatch",
    ),
    (
        "explainer not ready",
        lambda r: error(503, "model_not_ready", "loading"),
        503,
        "explainer_unavailable",
    ),
    (
        "explainer busy",
        lambda r: error(503, "explainer_busy", "8 in progress"),
        503,
        "explainer_unavailable",
    ),
    ("explainer bug", lambda r: error(500, "internal", "internal error"), 502, "explainer_error"),
    ("not JSON", lambda r: httpx.Response(200, content=b"<html>"), 502, "explainer_error"),
    ("wrong shape", lambda r: httpx.Response(200, json={"x": 1}), 502, "explainer_error"),
    (
        "too few explanations",
        lambda r: httpx.Response(200, json=explanation(n=1)),
        502,
        "explainer_error",
    ),
    (
        "a proxy's plain 502",
        lambda r: httpx.Response(502, content=b"bad gateway"),
        502,
        "explainer_error",
    ),
    (
        "explainer's own batch limit",
        lambda r: error(422, "invalid_input", "at most 1", [{"loc": ["instances"]}]),
        422,
        "invalid_input",
    ),
    ("connection refused", _raise(httpx.ConnectError("refused")), 503, "explainer_unavailable"),
    ("connect timeout", _raise(httpx.ConnectTimeout("slow")), 503, "explainer_unavailable"),
    ("connection reset", _raise(httpx.ReadError("reset")), 503, "explainer_unavailable"),
    ("read timeout", _raise(httpx.ReadTimeout("slow")), 504, "explainer_timeout"),
    ("no answer in time", _slow, 504, "explainer_timeout"),
]


@pytest.mark.parametrize(("case", "handler", "status", "type_"), CASES, ids=[c[0] for c in CASES])
def test_each_failure_maps_to_its_status(
    case: str, handler: Callable[[httpx.Request], Any], status: int, type_: str
) -> None:
    with pytest.raises(ServiceError) as raised:
        call(handler, timeout=0.2)
    assert (raised.value.status, raised.value.type) == (status, type_)
    assert raised.value.status != 500


def test_a_version_mismatch_names_both_versions() -> None:
    with pytest.raises(ServiceError) as raised:
        call(lambda r: httpx.Response(200, json=explanation("v-other")))
    assert "v-other" in raised.value.message
    assert VERSION in raised.value.message


def test_the_explainers_refusal_details_reach_the_client() -> None:
    details = [{"loc": ["instances"], "reason": "batch_too_large", "message": "at most 1"}]
    with pytest.raises(ServiceError) as raised:
        call(lambda r: error(422, "invalid_input", "1 invalid value(s)", details))
    assert raised.value.details == details
    assert "1 invalid value(s)" in raised.value.message
