"""API behaviour over the real factory and a real bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from model import features as F
from model.bundle import MODEL_FILE
from service.config import Settings
from service.main import create_app

READING = F.example_reading()


def test_single_reading(client: TestClient) -> None:
    response = client.post("/v1/predict", json=READING, headers={"X-Request-ID": "req-123"})
    assert response.status_code == 200
    body = response.json()
    assert body["request_id"] == "req-123" == response.headers["x-request-id"]
    [prediction] = body["predictions"]
    assert 0 <= prediction["failure_probability"] <= 1
    assert prediction["failure"] == (prediction["failure_probability"] >= body["threshold"])
    assert body["model_version"] == client.get("/v1/model").json()["version"]


def test_batch_keeps_order(client: TestClient) -> None:
    """Each answer of a batch is its own reading's (the model's ranking of them is a model
    tier test: tests/model/test_training.py)."""
    risky = {**READING, F.TOOL_WEAR.name: 230.0, F.TORQUE.name: 65.0}
    body = client.post("/v1/predict", json={"instances": [READING, risky, READING]}).json()
    probabilities = [p["failure_probability"] for p in body["predictions"]]
    alone = [
        client.post("/v1/predict", json=r).json()["predictions"][0]["failure_probability"]
        for r in (READING, risky)
    ]
    assert probabilities == [alone[0], alone[1], alone[0]]
    assert alone[0] != alone[1]


def test_unsafe_request_id_is_replaced(client: TestClient) -> None:
    response = client.post("/v1/predict", json=READING, headers={"X-Request-ID": "a b;<script>"})
    assert response.headers["x-request-id"] != "a b;<script>"
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_model_metadata_and_probes(client: TestClient) -> None:
    meta = client.get("/v1/model").json()
    assert meta["schema_hash"] == F.SCHEMA_HASH
    assert meta["inference_path"].startswith("serving-form-")
    assert len(meta["bundle_hash"]) == 64
    assert client.get("/healthz").json() == {"status": "ok", "model_version": None}
    assert client.get("/readyz").json()["status"] == "ready"


@pytest.fixture
def tampered(bundle_path: Path, tmp_path: Path) -> Path:
    copy = tmp_path / bundle_path.name
    shutil.copytree(bundle_path, copy)
    with (copy / MODEL_FILE).open("r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return copy


@pytest.mark.parametrize("case", ["missing", "tampered", "not the pinned one"])
def test_unusable_bundle_keeps_readiness_503(
    case: str,
    tampered: Path,
    bundle_path: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    model_dir = {"tampered": tampered, "missing": tmp_path / "empty"}.get(case, bundle_path)
    pin = "0" * 64 if case == "not the pinned one" else None
    settings = Settings(model_dir=model_dir, log_format="json", bundle_sha256=pin)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        reason = ready.json()["error"]["message"]
        expected = {"tampered": "was modified", "missing": "no model bundle"}.get(case, "pins")
        assert expected in reason
        predict = client.post("/v1/predict", json=READING)
        assert predict.status_code == 503
        assert predict.json()["error"]["type"] == "model_not_ready"
    logged = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line]
    refused = [e for e in logged if e.get("event") == "bundle_refused"]
    assert refused and refused[0]["level"] == "error"


def _big_batch(n: int) -> dict[str, Any]:
    return {"instances": [READING] * n}


BAD_INPUTS: dict[str, tuple[dict[str, Any], int, str, str | None]] = {
    # name: (request kwargs, status, error type, reason label)
    "string number": (
        {"json": {**READING, F.TORQUE.name: "40"}},
        422,
        "invalid_input",
        "wrong_type",
    ),
    "boolean number": (
        {"json": {**READING, F.TORQUE.name: True}},
        422,
        "invalid_input",
        "wrong_type",
    ),
    "null value": ({"json": {**READING, F.TORQUE.name: None}}, 422, "invalid_input", "wrong_type"),
    "below bound": (
        {"json": {**READING, F.TORQUE.name: -1.0}},
        422,
        "invalid_input",
        "out_of_range",
    ),
    "above bound": (
        {"json": {**READING, F.AIR_TEMPERATURE.name: 1e6}},
        422,
        "invalid_input",
        "out_of_range",
    ),
    "overflow to infinity": (
        {
            "content": json.dumps(READING).replace("300.1", "1e999"),
            "headers": {"content-type": "application/json"},
        },
        400,
        "malformed_json",
        None,
    ),
    "NaN literal": (
        {
            "content": json.dumps(READING).replace("300.1", "NaN"),
            "headers": {"content-type": "application/json"},
        },
        400,
        "malformed_json",
        None,
    ),
    "unknown type": (
        {"json": {**READING, F.PRODUCT_TYPE.name: "X"}},
        422,
        "invalid_input",
        "invalid_category",
    ),
    "lowercase type": (
        {"json": {**READING, F.PRODUCT_TYPE.name: "m"}},
        422,
        "invalid_input",
        "invalid_category",
    ),
    "missing field": (
        {"json": {k: v for k, v in READING.items() if k != F.TORQUE.name}},
        422,
        "invalid_input",
        "missing_field",
    ),
    "unknown field": (
        {"json": {**READING, "colour": "red"}},
        422,
        "invalid_input",
        "unknown_field",
    ),
    "empty batch": ({"json": {"instances": []}}, 422, "invalid_input", "empty_batch"),
    "batch too large": ({"json": _big_batch(1001)}, 422, "invalid_input", "batch_too_large"),
    "instances not a list": ({"json": {"instances": READING}}, 422, "invalid_input", "wrong_type"),
    "array body": ({"json": [READING]}, 422, "invalid_input", "wrong_type"),
    "malformed JSON": (
        {"content": b'{"product_type": ', "headers": {"content-type": "application/json"}},
        400,
        "malformed_json",
        "malformed_json",
    ),
    "empty body": (
        {"content": b"", "headers": {"content-type": "application/json"}},
        400,
        "malformed_json",
        "malformed_json",
    ),
    "wrong content type": (
        {"content": json.dumps(READING), "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
        "unsupported_media_type",
    ),
    "no content type": (
        {"content": json.dumps(READING).encode()},
        415,
        "unsupported_media_type",
        None,
    ),
    "body too large": (
        {"content": b" " * 2_000_000, "headers": {"content-type": "application/json"}},
        413,
        "body_too_large",
        "body_too_large",
    ),
    "chunked body too large": (
        {"content": iter([b" " * 600_000] * 4), "headers": {"content-type": "application/json"}},
        413,
        "body_too_large",
        None,
    ),
    "invalid utf-8": (
        {"content": b'{"product_type": "\xff"}', "headers": {"content-type": "application/json"}},
        400,
        "malformed_json",
        None,
    ),
}


@pytest.mark.parametrize("name", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_gets_its_specific_4xx(client: TestClient, name: str) -> None:
    kwargs, status, error_type, reason = BAD_INPUTS[name]
    response = client.post("/v1/predict", **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    assert error["message"]
    if reason and error_type == "invalid_input":
        assert reason in {d["reason"] for d in error["details"]}


def test_client_field_names_are_not_echoed_unbounded(client: TestClient) -> None:
    response = client.post("/v1/predict", json={**READING, "x" * 100_000: 1})
    assert response.status_code == 422
    assert len(response.content) < 2_000
    assert response.json()["error"]["details"][0]["reason"] == "unknown_field"


def test_unknown_routes_and_methods_use_the_error_body(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    wrong = client.get("/v1/predict")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["type"] == "method_not_allowed"


def test_openapi_documents_every_status(service_settings: Settings) -> None:
    assert create_app(service_settings).openapi_url is None  # off unless FAULTLINE_OPENAPI
    with TestClient(create_app(service_settings.model_copy(update={"openapi": True}))) as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 404  # no Swagger UI (it loads from a CDN)
    responses = spec["paths"]["/v1/predict"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422", "500", "503"} <= set(responses)
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert len(body["schema"]["anyOf"]) == 2  # generated from the declared body type
    reading = spec["components"]["schemas"]["Reading"]
    assert reading["additionalProperties"] is False
    assert reading["examples"]


def test_the_pinned_bundle_is_served(bundle_path: Path) -> None:
    from model.bundle import load_bundle

    pin = load_bundle(bundle_path, with_pipeline=False).bundle_hash
    settings = Settings(model_dir=bundle_path, log_format="json", bundle_sha256=pin)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/model").json()["bundle_hash"] == pin
