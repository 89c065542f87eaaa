"""Each domain metric is exposed and moves as expected; drift rises with drifted readings."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from model import features as F
from service.main import create_app
from tests.conftest import metric_value
from tests.integration.helpers import scrape
from training import data as D


def _readings(n: int, seed: int) -> list[dict[str, object]]:
    frame = D.generate(n, seed)[list(F.FEATURE_NAMES)]
    return frame.to_dict(orient="records")


def _scrape(client: TestClient) -> str:
    return scrape(client)


def test_domain_and_http_metrics_move(client: TestClient) -> None:
    version = client.get("/v1/model").json()["version"]
    before = _scrape(client)
    readings = _readings(120, 4)
    for start in range(0, 120, 40):
        assert client.post(
            "/v1/predict", json={"instances": readings[start : start + 40]}
        ).is_success
    assert client.post("/v1/predict", json={**readings[0], "extra": 1}).status_code == 422
    after = _scrape(client)

    def delta(name: str, **labels: str) -> float:
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    v = {"model_version": version}
    assert delta("faultline_predictions_total", **v) == 120
    assert delta("faultline_predicted_probability_count", **v) == 120
    assert delta("faultline_batch_size_count", **v) == 3
    assert delta("faultline_batch_size_sum", **v) == 120
    assert delta("faultline_inference_duration_seconds_count", **v) >= 1
    assert (
        delta("faultline_invalid_requests_total", reason="unknown_field", field="unknown", **v) == 1
    )
    assert metric_value(after, "faultline_model_info", **v) == 1
    assert metric_value(after, "faultline_model_ready", **v) == 1
    assert metric_value(after, "faultline_reference_probability_ratio", le="1.0", **v) == 1.0
    assert delta("http_requests_total", handler="/v1/predict", status="200", method="POST") == 3
    assert delta("http_requests_total", handler="/v1/predict", status="422", method="POST") == 1
    assert delta("http_request_duration_seconds_count", handler="/v1/predict") == 4
    # /metrics is not on the API port; probes are not instrumented; fine latency buckets exist
    assert client.get("/metrics").status_code == 404
    assert metric_value(after, "http_requests_total", handler="/metrics") == 0
    assert 'le="0.001"' in after
    assert "faultline_http_requests_in_flight" in after


def test_no_label_takes_per_request_values(client: TestClient) -> None:
    for i in range(5):
        client.post(
            "/v1/predict",
            json={"instances": _readings(3, i)},
            headers={"X-Request-ID": f"unique-{i}"},
        )
        client.post("/v1/predict", json={f"field-{i}": 1})
    text = _scrape(client)
    assert "unique-" not in text
    assert "field-" not in text


def test_drift_rises_for_drifted_readings(service_settings: Any) -> None:
    # 100-reading requests may each fill a fifth of the 500-reading window here
    settings = service_settings.model_copy(update={"drift_max_request_share": 0.2})
    with TestClient(create_app(settings)) as client:
        _drift_rises(client)


def _drift_rises(client: TestClient) -> None:
    version = client.get("/v1/model").json()["version"]
    normal = _readings(500, 21)
    for start in range(0, 500, 100):
        client.post("/v1/predict", json={"instances": normal[start : start + 100]})
    time.sleep(0.05)
    client.post("/v1/predict", json=normal[0])  # publishes (throttled) gauges
    calm = _scrape(client)
    drifted = [
        {
            **r,
            F.TORQUE.name: float(r[F.TORQUE.name]) + 25.0,  # type: ignore[arg-type]
            F.AIR_TEMPERATURE.name: float(r[F.AIR_TEMPERATURE.name]) + 6,
        }  # type: ignore[arg-type]
        for r in normal
    ]
    for start in range(0, 500, 100):
        client.post("/v1/predict", json={"instances": drifted[start : start + 100]})
    time.sleep(0.05)
    client.post("/v1/predict", json=drifted[0])
    shifted = _scrape(client)

    def psi(text: str, feature: str) -> float:
        return metric_value(
            text, "faultline_feature_drift_psi", model_version=version, feature=feature
        )

    assert psi(calm, F.TORQUE.name) < 0.1
    assert psi(shifted, F.TORQUE.name) > 1.0
    assert psi(shifted, F.AIR_TEMPERATURE.name) > 1.0
    assert psi(shifted, F.TOOL_WEAR.name) < 0.2  # untouched feature stays calm
    assert metric_value(
        shifted, "faultline_prediction_shift_psi", model_version=version
    ) > metric_value(calm, "faultline_prediction_shift_psi", model_version=version)
    assert metric_value(shifted, "faultline_drift_window_readings", model_version=version) == 500
