"""The Open Inference Protocol (KServe v2 REST): a translation layer over the /v1 core.

In process: metadata, health, the protocol's error shape, the same validation and metrics as
/v1. Against a real server: tritonclient (a v2 client from PyPI) gets the same probabilities as
/v1/predict, and schemathesis runs the protocol's published OpenAPI document.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from model import features as F
from service.config import Settings
from service.main import create_app
from service.oip import INPUTS
from tests.conftest import metric_value
from tests.integration.helpers import schemathesis, scrape
from training import data as D

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT.parent / "shared" / "protocols" / "open-inference-protocol-v2-rest.yaml"
READINGS = D.generate(40, 5)[list(F.FEATURE_NAMES)].to_dict(orient="records")


def columns(readings: list[dict[str, Any]], rank: int = 1) -> dict[str, Any]:
    """An inference request: one tensor per feature."""
    n = len(readings)
    return {
        "inputs": [
            {
                "name": name,
                "datatype": datatype,
                "shape": [n] if rank == 1 else [n, 1],
                "data": [r[name] for r in readings],
            }
            for name, datatype in INPUTS.items()
        ]
    }


@pytest.fixture(scope="module")
def client(service_settings: Settings) -> Iterator[TestClient]:
    app = create_app(service_settings, CollectorRegistry())
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_infer_answers_what_v1_answers(client: TestClient) -> None:
    v1 = client.post("/v1/predict", json={"instances": READINGS}).json()
    for rank in (1, 2):
        request = {"id": "r-1", **columns(READINGS, rank)}
        for path in (
            "/v2/models/faultline/infer",
            f"/v2/models/faultline/versions/{v1['model_version']}/infer",
        ):
            answer = client.post(path, json=request)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["id"] == "r-1" and body["model_version"] == v1["model_version"]
            outputs = {o["name"]: o for o in body["outputs"]}
            assert outputs["failure_probability"]["data"] == [
                p["failure_probability"] for p in v1["predictions"]
            ]
            assert outputs["failure"]["data"] == [p["failure"] for p in v1["predictions"]]
            assert outputs["failure"]["datatype"] == "BOOL"
            assert outputs["failure_probability"]["shape"] == ([40] if rank == 1 else [40, 1])
    only = client.post(
        "/v2/models/faultline/infer",
        json={**columns(READINGS[:2]), "outputs": [{"name": "failure"}]},
    ).json()
    assert [o["name"] for o in only["outputs"]] == ["failure"]


def test_metadata_and_health(client: TestClient) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "faultline"
    meta = client.get("/v2/models/faultline").json()
    assert {i["name"] for i in meta["inputs"]} == set(F.FEATURE_NAMES)
    assert {o["name"]: o["datatype"] for o in meta["outputs"]} == {
        "failure_probability": "FP64",
        "failure": "BOOL",
    }
    assert client.get("/v2/models/faultline/ready").json()["ready"] is True
    version = meta["versions"][0]
    assert client.get(f"/v2/models/faultline/versions/{version}/ready").status_code == 200
    assert client.get("/v2/models/faultline/versions/nope/ready").status_code == 404


def _bad(request: dict[str, Any], index: int, **change: Any) -> dict[str, Any]:
    inputs = [dict(t) for t in request["inputs"]]
    inputs[index] = {**inputs[index], **change}
    return {"inputs": inputs}


GOOD = columns(READINGS[:3])
TORQUE = list(INPUTS).index(F.TORQUE.name)
TYPE = list(INPUTS).index(F.PRODUCT_TYPE.name)
BAD = {
    "unknown input": (_bad(GOOD, 0, name="colour"), 400),
    "missing input": ({"inputs": GOOD["inputs"][1:]}, 400),
    "string for a number": (_bad(GOOD, TORQUE, datatype="BYTES", data=["1", "2", "3"]), 400),
    "number type for product type": (_bad(GOOD, TYPE, datatype="FP64", data=[1.0, 2.0, 3.0]), 400),
    "out of range": (_bad(GOOD, TORQUE, data=[-1.0, 40.0, 40.0]), 400),
    "shape and data disagree": (_bad(GOOD, 0, shape=[4]), 400),
    "rows differ between inputs": (
        _bad(GOOD, 0, shape=[2], data=GOOD["inputs"][0]["data"][:2]),
        400,
    ),
    "wrong rank": (_bad(GOOD, 0, shape=[3, 2]), 400),
    "not a request": ({"instances": READINGS[:1]}, 400),
    "unknown output": ({**GOOD, "outputs": [{"name": "explanation"}]}, 400),
    "too many rows": (columns(READINGS[:1] * 1001), 400),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_requests_get_the_protocol_error_shape(client: TestClient, case: str) -> None:
    request, status = BAD[case]
    answer = client.post("/v2/models/faultline/infer", json=request)
    assert answer.status_code == status, answer.text
    assert list(answer.json()) == ["error"] and isinstance(answer.json()["error"], str)
    assert "instances" not in answer.json()["error"]


def test_protocol_level_refusals(client: TestClient) -> None:
    assert client.post("/v2/models/other/infer", json=GOOD).status_code == 404
    assert client.post("/v2/models/faultline/versions/0/infer", json=GOOD).status_code == 404
    binary = client.post(
        "/v2/models/faultline/infer", json=GOOD, headers={"Inference-Header-Content-Length": "10"}
    )
    assert binary.status_code == 415 and "binary" in binary.json()["error"]
    assert client.post("/v2/models/faultline/infer", content=b"{").status_code == 400
    assert client.get("/v2/models/faultline/infer").status_code == 405


def test_infer_is_measured_and_counted_like_v1(client: TestClient) -> None:
    client.post("/v2/models/faultline/infer", json=GOOD)
    client.post("/v2/models/faultline/infer", json=BAD["out of range"][0])
    text = scrape(client)
    route = {"handler": "/v2/models/{model_name}/infer", "method": "POST"}
    assert metric_value(text, "http_requests_total", status="200", **route) >= 1
    assert metric_value(text, "http_requests_total", status="400", **route) >= 1
    assert metric_value(text, "faultline_invalid_requests_total", reason="out_of_range") >= 1


@pytest.mark.slow
def test_a_v2_client_from_pypi_gets_the_v1_probabilities(bundle_path: Path, tmp_path: Path) -> None:
    import tritonclient.http as triton

    from loadtest.stack import service

    with service(bundle_path.parent, tmp_path / "server.log") as running:
        v1 = httpx.post(f"{running.url}/v1/predict", json={"instances": READINGS}).json()
        triton_client = triton.InferenceServerClient(running.url.removeprefix("http://"))
        assert triton_client.is_server_live() and triton_client.is_model_ready("faultline")
        inputs = []
        for name, datatype in INPUTS.items():
            values = [r[name] for r in READINGS]
            array = np.array(values, dtype=object if datatype == "BYTES" else np.float64)
            tensor = triton.InferInput(name, [len(values)], datatype)
            tensor.set_data_from_numpy(array, binary_data=False)
            inputs.append(tensor)
        outputs = [
            triton.InferRequestedOutput(n, binary_data=False)
            for n in ("failure_probability", "failure")
        ]
        result = triton_client.infer("faultline", inputs, outputs=outputs)
        probabilities = result.as_numpy("failure_probability")
        assert probabilities.tolist() == [p["failure_probability"] for p in v1["predictions"]]
        assert result.as_numpy("failure").tolist() == [p["failure"] for p in v1["predictions"]]
        metadata = triton_client.get_model_metadata("faultline")
        assert metadata["versions"] == [v1["model_version"]]


@pytest.mark.slow
@pytest.mark.skipif(not PROTOCOL.is_file(), reason="the protocol document lives in ../shared")
@pytest.mark.skipif(
    shutil.which("st") is None and not Path(".venv/bin/st").exists(),
    reason="schemathesis CLI not installed",
)
def test_the_protocols_openapi_document_finds_no_server_error(
    bundle_path: Path, tmp_path: Path
) -> None:
    from loadtest.stack import service

    with service(bundle_path.parent, tmp_path / "server.log") as running:
        checks = "not_a_server_error,response_schema_conformance"
        result = schemathesis(
            str(PROTOCOL),
            tmp_path,
            "--url",
            running.url,
            "--checks",
            checks,
            "--max-examples",
            "40",
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
