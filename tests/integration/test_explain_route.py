"""POST /v1/explain on the service app (in process, tiny real bundle): wiring, validation before
forwarding, error bodies, metrics labels, OpenAPI. The explainer is a MockTransport here, or a
closed port; tests/integration/test_explain.py runs the real explainer process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from loadtest.stack import free_port
from model import features as F
from service.explainer_client import ExplainerProxy
from service.main import create_app
from tests.conftest import metric_value
from tests.integration.helpers import scrape
from tests.integration.test_oip import columns


class FakeExplainer:
    """Answers like the explainer serving `version`; records what it was sent."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        n = len(httpx.Response(200, content=request.content).json()["instances"])
        attributions = {f: float(i) for i, f in enumerate(F.FEATURE_NAMES)}
        row = {"failure_probability": 0.5, "raw_score": 15.0, "attributions": attributions}
        body = {
            "model_version": self.version,
            "request_id": request.headers["x-request-id"],
            "output": "log-odds",
            "base_value": 0.0,
            "features": list(F.FEATURE_NAMES),
            "explanations": [row] * n,
        }
        return httpx.Response(200, json=body)


@pytest.fixture
def fake(client: TestClient) -> Iterator[FakeExplainer]:
    """The app's explainer client, talking to a FakeExplainer serving the app's version."""
    state = client.app.state.faultline  # type: ignore[attr-defined]
    fake = FakeExplainer(state.predictor.version)
    state.explainer = ExplainerProxy("http://explainer:8001", 2.0, 2, httpx.MockTransport(fake))
    yield fake
    state.explainer = None


def test_explain_is_a_503_when_no_explainer_is_configured(client: TestClient) -> None:
    answer = client.post("/v1/explain", json=F.example_reading(), headers={"X-Request-ID": "off-1"})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["x-request-id"] == "off-1"
    assert answer.json() == {
        "error": {
            "type": "explainer_unavailable",
            "message": "explanations are off: FAULTLINE_EXPLAINER_URL is empty",
            "details": None,
        }
    }
    assert client.post("/v1/predict", json=F.example_reading()).status_code == 200


def test_explain_is_a_503_when_the_explainer_is_down(service_settings: Any) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = service_settings.model_copy(update={"explainer_url": down})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answer = client.post("/v1/explain", json=F.example_reading())
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["type"] == "explainer_unavailable"
    assert down in error["message"]


def test_a_valid_request_is_forwarded_with_its_request_id(
    client: TestClient, fake: FakeExplainer
) -> None:
    batch = {"instances": [F.example_reading()] * 3}
    answer = client.post("/v1/explain", json=batch, headers={"X-Request-ID": "fwd-1"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["request_id"] == "fwd-1"
    assert len(answer.json()["explanations"]) == 3
    (request,) = fake.requests
    assert request.headers["x-request-id"] == "fwd-1"
    assert httpx.Response(200, content=request.content).json() == batch
    served = {"handler": "/v1/explain", "method": "POST", "status": "200"}
    assert metric_value(scrape(client), "http_requests_total", **served) == 1


INVALID: list[Any] = [
    {**F.example_reading(), F.TORQUE.name: 1e9},
    {"instances": [F.example_reading(), {**F.example_reading(), "extra": 1}]},
    {"instances": "nope"},
    7,
]


@pytest.mark.parametrize("body", INVALID)
def test_invalid_input_is_refused_as_predict_refuses_it_and_never_forwarded(
    client: TestClient, fake: FakeExplainer, body: Any
) -> None:
    explained = client.post("/v1/explain", json=body)
    predicted = client.post("/v1/predict", json=body)
    assert explained.status_code == predicted.status_code == 422
    assert explained.json() == predicted.json()
    assert fake.requests == []
    refused = {"handler": "/v1/explain", "method": "POST", "status": "422"}
    assert metric_value(scrape(client), "http_requests_total", **refused) == 1


def test_the_explain_batch_limit_is_its_own(client: TestClient, fake: FakeExplainer) -> None:
    limit = client.app.state.faultline.settings.explain_max_batch  # type: ignore[attr-defined]
    assert client.post("/v1/explain", json={"instances": [F.example_reading()] * limit}).is_success
    over = client.post("/v1/explain", json={"instances": [F.example_reading()] * (limit + 1)})
    assert over.status_code == 422
    assert over.json()["error"]["details"][0]["reason"] == "batch_too_large"
    assert len(fake.requests) == 1
    assert client.post("/v1/predict", json={"instances": [F.example_reading()] * (limit + 1)})


def test_a_body_over_the_size_limit_is_a_413(client: TestClient, fake: FakeExplainer) -> None:
    limit = client.app.state.faultline.settings.max_body_bytes  # type: ignore[attr-defined]
    answer = client.post(
        "/v1/explain", content=b" " * (limit + 1), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["type"] == "body_too_large"
    assert fake.requests == []


def test_only_post_is_allowed(client: TestClient) -> None:
    answer = client.get("/v1/explain")
    assert answer.status_code == 405
    assert answer.json()["error"]["type"] == "method_not_allowed"


def test_openapi_declares_explain_with_its_own_batch_limit(service_settings: Any) -> None:
    settings = service_settings.model_copy(update={"openapi": True, "explain_max_batch": 40})
    with TestClient(create_app(settings)) as client:
        spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/explain"]["post"]
    assert {"200", "413", "415", "422", "502", "503", "504"} <= set(operation["responses"])
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ExplainResponse"}
    batch = spec["components"]["schemas"]["ExplainBatch"]["properties"]["instances"]
    assert batch["maxItems"] == 40
    predict = spec["components"]["schemas"]["Batch"]["properties"]["instances"]
    assert predict["maxItems"] == settings.max_batch
    assert spec["paths"]["/v1/predict"]["post"]["operationId"] == "predict_v1_predict_post"
    oip_explain = spec["paths"]["/v2/models/{model_name}/explain"]["post"]
    assert {"400", "404", "502", "503", "504"} <= set(oip_explain["responses"])


def oip_request(readings: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {**columns(readings), **extra}


def test_oip_explain_answers_the_attributions_as_outputs(
    client: TestClient, fake: FakeExplainer
) -> None:
    readings = [F.example_reading(), {**F.example_reading(), F.TORQUE.name: 60.0}]
    answer = client.post(
        "/v2/models/faultline/explain",
        json=oip_request(readings, id="oip-1", outputs=[{"name": "failure"}]),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == "oip-1"
    assert body["model_name"] == "faultline"
    assert body["model_version"] == fake.version
    assert body["parameters"] == {
        "output": "log-odds",
        "base_value": 0.0,
        "features": list(F.FEATURE_NAMES),
    }
    outputs = {o["name"]: o for o in body["outputs"]}
    n = len(F.FEATURE_NAMES)
    assert outputs["attributions"]["shape"] == [2, n]
    assert outputs["attributions"]["data"] == [float(i) for i in range(n)] * 2
    assert outputs["raw_score"] == {
        "name": "raw_score",
        "datatype": "FP64",
        "shape": [2],
        "data": [15.0, 15.0],
    }
    assert outputs["failure_probability"]["data"] == [0.5, 0.5]
    (forwarded,) = fake.requests
    assert httpx.Response(200, content=forwarded.content).json() == {"instances": readings}
    route = {"handler": "/v2/models/{model_name}/explain", "method": "POST", "status": "200"}
    assert metric_value(scrape(client), "http_requests_total", **route) == 1


def test_oip_explain_errors_are_in_the_protocols_shape(
    client: TestClient, fake: FakeExplainer
) -> None:
    bad = oip_request([{**F.example_reading(), F.TORQUE.name: -5.0}])
    invalid = client.post("/v2/models/faultline/explain", json=bad)
    assert invalid.status_code == 400
    assert set(invalid.json()) == {"error"}
    assert "row 0" in invalid.json()["error"]
    unknown = client.post("/v2/models/other/explain", json=oip_request([F.example_reading()]))
    assert unknown.status_code == 404
    too_many = oip_request([F.example_reading()] * 101)
    assert client.post("/v2/models/faultline/explain", json=too_many).status_code == 400
    assert fake.requests == []
    client.app.state.faultline.explainer = None  # type: ignore[attr-defined]
    off = client.post("/v2/models/faultline/explain", json=oip_request([F.example_reading()]))
    assert off.status_code == 503
    assert "FAULTLINE_EXPLAINER_URL" in off.json()["error"]
