"""The explainer app in process (tiny real bundle): readiness, refusals before any work, the
rolling attribution window and its gauges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from explainer.app import create_app
from explainer.config import ExplainerSettings
from explainer.metrics import AttributionWindow
from model import features as F
from service.explainer_client import MODEL_VERSION_HEADER
from tests.conftest import metric_value
from tests.integration.helpers import scrape

pytestmark = pytest.mark.slow  # loads an Attributor: shap's import alone takes seconds


@pytest.fixture
def explainer_client(bundle_path: Path) -> Iterator[TestClient]:
    settings = ExplainerSettings(
        model_dir=bundle_path.parent, log_format="json", window=5, max_batch=10
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_ready_with_the_bundles_version(explainer_client: TestClient, bundle_path: Path) -> None:
    assert explainer_client.get("/healthz").status_code == 200
    ready = explainer_client.get("/readyz")
    assert ready.json() == {"status": "ready", "model_version": bundle_path.name}


def test_explains_with_the_service_validation_and_request_id(
    explainer_client: TestClient, bundle_path: Path
) -> None:
    answer = explainer_client.post(
        "/v1/explain",
        json={"instances": [F.example_reading()] * 2},
        headers={"X-Request-ID": "e-1"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["request_id"] == "e-1"
    assert body["model_version"] == bundle_path.name
    for explanation in body["explanations"]:
        total = body["base_value"] + sum(explanation["attributions"].values())
        assert total == pytest.approx(explanation["raw_score"], abs=1e-9)
    over = explainer_client.post("/v1/explain", json={"instances": [F.example_reading()] * 11})
    assert over.status_code == 422
    assert over.json()["error"]["details"][0]["reason"] == "batch_too_large"


def test_another_expected_version_is_refused_before_any_work(
    explainer_client: TestClient,
) -> None:
    answer = explainer_client.post(
        "/v1/explain", json=F.example_reading(), headers={MODEL_VERSION_HEADER: "v-other"}
    )
    assert answer.status_code == 409
    assert answer.json()["error"]["type"] == "model_version_mismatch"
    assert metric_value(scrape(explainer_client), "faultline_explained_readings_total") == 0


def test_busy_is_a_503_before_reading_the_body(explainer_client: TestClient) -> None:
    state = explainer_client.app.state.explainer  # type: ignore[attr-defined]
    state.pending = state.settings.max_pending
    try:
        answer = explainer_client.post("/v1/explain", json=F.example_reading())
    finally:
        state.pending = 0
    assert answer.status_code == 503
    assert answer.json()["error"]["type"] == "explainer_busy"
    assert explainer_client.post("/v1/explain", json=F.example_reading()).status_code == 200


def test_the_window_gauges_follow_the_last_readings(
    explainer_client: TestClient, bundle_path: Path
) -> None:
    """window=5: after 3 + 4 readings the gauge is the mean |attribution| of the last 5."""
    batches = [
        [{**F.example_reading(), F.TORQUE.name: t} for t in (20.0, 30.0, 40.0)],
        [{**F.example_reading(), F.TORQUE.name: t} for t in (50.0, 55.0, 60.0, 65.0)],
    ]
    rows = []
    for batch in batches:
        answer = explainer_client.post("/v1/explain", json={"instances": batch}).json()
        rows += [e["attributions"][F.TORQUE.name] for e in answer["explanations"]]
    text = scrape(explainer_client)
    version = bundle_path.name
    torque = {"model_version": version, "feature": F.TORQUE.name}
    assert metric_value(text, "faultline_attribution_mean_abs", **torque) == pytest.approx(
        np.mean(np.abs(rows[-5:])), abs=1e-12
    )
    assert metric_value(text, "faultline_attribution_window_readings", model_version=version) == 5
    assert metric_value(text, "faultline_explained_readings_total", model_version=version) == 7


def test_not_ready_without_a_bundle(tmp_path: Path) -> None:
    settings = ExplainerSettings(model_dir=tmp_path, log_format="json")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        explained = client.post("/v1/explain", json=F.example_reading())
    assert ready.status_code == explained.status_code == 503
    assert explained.json()["error"]["type"] == "model_not_ready"


def test_the_window_keeps_only_the_last_readings() -> None:
    window = AttributionWindow(4, 2)
    window.add(np.array([[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]]))
    assert window.mean().tolist() == [2.0, 2.0]
    window.add(np.array([[-10.0, 10.0], [20.0, 0.0]]))  # wraps: 2, 3, 10, 20 remain
    assert window.count == 4
    assert window.mean().tolist() == [8.75, 3.75]
    window.add(np.arange(20.0).reshape(10, 2))  # longer than the window: its last 4 rows
    assert window.mean().tolist() == [15.0, 16.0]


def test_the_model_dir_falls_back_to_the_services_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAULTLINE_MODEL_DIR", str(tmp_path / "shared"))
    assert ExplainerSettings().model_dir == tmp_path / "shared"
    monkeypatch.setenv("FAULTLINE_EXPLAINER_MODEL_DIR", str(tmp_path / "own"))
    assert ExplainerSettings().model_dir == tmp_path / "own"
