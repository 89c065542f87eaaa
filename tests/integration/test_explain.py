"""POST /v1/explain on real processes: the explainer (`python -m explainer`) and the service
(`faultline serve` with FAULTLINE_EXPLAINER_URL) on free ports, serving the real bundle."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.stack import Service, service
from model import features as F
from model.bundle import METADATA_FILE
from tests.conftest import metric_value
from tests.integration.helpers import Explainer, explainer, log_events
from tests.integration.test_oip import columns
from training import data as D
from training.export import PARITY_TOLERANCE

pytestmark = pytest.mark.slow  # trains the real bundle, starts two processes

ADDITIVITY = 1e-9


@dataclass
class Stack:
    explainer: Explainer
    service: Service
    bundle: Path


@pytest.fixture(scope="module")
def stack(real_bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The explainer and the service on the real bundle, the service forwarding to it."""
    logs = tmp_path_factory.mktemp("explain")
    with (
        explainer(real_bundle_path, logs / "explainer.log") as running_explainer,
        service(
            real_bundle_path,
            logs / "service.log",
            FAULTLINE_EXPLAINER_URL=running_explainer.url,
            FAULTLINE_EXPLAIN_TIMEOUT_SECONDS="30",  # a loaded 2-core CI machine
        ) as running_service,
    ):
        yield Stack(running_explainer, running_service, real_bundle_path)


def readings(n: int, seed: int = 5) -> list[dict[str, Any]]:
    frame = D.generate(max(n, 2), seed)[list(F.FEATURE_NAMES)]
    rows: list[dict[str, Any]] = frame.to_dict("records")[:n]
    return rows


def post(stack: Stack, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{stack.service.url}{path}", json=body, headers=headers, timeout=60)


def test_attributions_add_up_and_probabilities_are_predicts(stack: Stack) -> None:
    batch = {"instances": readings(100)}
    explained = post(stack, "/v1/explain", batch)
    predicted = post(stack, "/v1/predict", batch)
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["features"] == list(F.FEATURE_NAMES)
    assert body["model_version"] == predicted.json()["model_version"] == stack.bundle.name
    assert body["output"] in ("log-odds", "probability")
    assert len(body["explanations"]) == 100
    for explanation, prediction in zip(
        body["explanations"], predicted.json()["predictions"], strict=True
    ):
        assert list(explanation["attributions"]) == list(F.FEATURE_NAMES)
        total = body["base_value"] + sum(explanation["attributions"].values())
        assert total == pytest.approx(explanation["raw_score"], abs=ADDITIVITY)
        # the explainer scores with the skops Pipeline, /v1/predict with its parity-tested
        # serving form: equal up to the tolerance training holds them to
        assert explanation["failure_probability"] == pytest.approx(
            prediction["failure_probability"], abs=PARITY_TOLERANCE
        )
    scores = {round(e["raw_score"], 6) for e in body["explanations"]}
    assert len(scores) > 10  # the batch is varied: not one reading answered 100 times


def test_torque_past_the_overstrain_rule_raises_torques_attribution(stack: Stack) -> None:
    """AI4I's overstrain rule: tool wear x torque above 11,000 min Nm fails an L product.
    The same reading with torque raised from 40 to 60 Nm at 200 min of wear crosses it (8,000
    -> 12,000); at 100 min of wear the same raise stays below it (4,000 -> 6,000), the control.
    Power stays inside the power-failure band, and no heat-dissipation condition holds."""
    limit = D.OVERSTRAIN_LIMIT_MIN_NM["L"]
    torque, wear = F.TORQUE.name, F.TOOL_WEAR.name
    reading = {
        F.PRODUCT_TYPE.name: "L",
        F.AIR_TEMPERATURE.name: 300.0,
        F.PROCESS_TEMPERATURE.name: 310.0,
        F.ROTATIONAL_SPEED.name: 1400.0,
    }
    pairs = {
        minutes: [{**reading, wear: minutes, torque: nm} for nm in (40.0, 60.0)]
        for minutes in (200.0, 100.0)
    }
    for minutes, (low, high) in pairs.items():
        for one in (low, high):
            power = one[torque] * one[F.ROTATIONAL_SPEED.name] * F.RPM_TO_RAD_PER_S
            assert D.PWF_MIN_POWER_W < power < D.PWF_MAX_POWER_W
        assert low[torque] * minutes < limit
        assert (high[torque] * minutes > limit) == (minutes == 200.0)

    answer = post(stack, "/v1/explain", {"instances": [*pairs[200.0], *pairs[100.0]]})
    assert answer.status_code == 200, answer.text
    calm, strained, control_low, control_high = answer.json()["explanations"]
    assert strained["failure_probability"] > calm["failure_probability"] + 0.3
    rise = strained["attributions"][torque] - calm["attributions"][torque]
    control_rise = control_high["attributions"][torque] - control_low["attributions"][torque]
    assert strained["attributions"][torque] > 0  # towards failure
    # the rule, not the torque raise alone, is what moves torque's attribution
    assert rise > 1.0
    assert rise > control_rise + 1.0


def test_oip_explain_carries_the_same_attributions(stack: Stack) -> None:
    rows = readings(5, seed=8)
    v1 = post(stack, "/v1/explain", {"instances": rows}).json()
    v2 = post(stack, "/v2/models/faultline/explain", columns(rows))
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    features = v1["features"]
    assert v2.json()["parameters"]["features"] == features
    assert outputs["attributions"]["shape"] == [5, len(features)]
    flat = [e["attributions"][f] for e in v1["explanations"] for f in features]
    assert outputs["attributions"]["data"] == pytest.approx(flat, abs=1e-12)
    raw = [e["raw_score"] for e in v1["explanations"]]
    assert outputs["raw_score"]["data"] == pytest.approx(raw, abs=1e-12)


def test_request_id_is_echoed_and_correlates_both_logs(stack: Stack) -> None:
    answer = post(stack, "/v1/explain", F.example_reading(), **{"X-Request-ID": "explain-corr-1"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == "explain-corr-1"
    assert answer.json()["request_id"] == "explain-corr-1"
    for log in (stack.service.log, stack.explainer.log):
        # the canonical line is written after the answer is sent: wait for it, briefly
        deadline = time.monotonic() + 10
        while True:
            lines = [
                e
                for e in log_events(log)
                if e.get("event") == "request" and e.get("request_id") == "explain-corr-1"
            ]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(lines) == 1, log
        assert lines[0]["route"] == "/v1/explain"
        assert lines[0]["status"] == 200
        assert lines[0]["batch_size"] == 1
        assert lines[0]["model_version"] == stack.bundle.name


BAD_BODIES: list[tuple[str, Any]] = [
    ("unknown field", {**F.example_reading(), "colour": "red"}),
    ("out of range", {**F.example_reading(), F.TORQUE.name: -1.0}),
    ("string for a number", {**F.example_reading(), F.TORQUE.name: "40"}),
    ("bad category", {**F.example_reading(), F.PRODUCT_TYPE.name: "X"}),
    ("missing field", {k: v for k, v in F.example_reading().items() if k != F.TORQUE.name}),
    ("not an object", [F.example_reading()]),
    ("empty batch", {"instances": []}),
    ("bad reading in a batch", {"instances": [F.example_reading(), {"x": 1}]}),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
def test_invalid_input_is_refused_exactly_as_predict_refuses_it(
    stack: Stack, case: str, body: Any
) -> None:
    explained = post(stack, "/v1/explain", body)
    predicted = post(stack, "/v1/predict", body)
    assert explained.status_code == predicted.status_code == 422
    assert explained.json() == predicted.json()
    assert explained.json()["error"]["type"] == "invalid_input"


def test_malformed_and_wrong_media_type_as_predict(stack: Stack) -> None:
    for content, media, status in (
        (b"{not json", "application/json", 400),
        (json.dumps(F.example_reading()).encode(), "text/plain", 415),
    ):
        answers = [
            httpx.post(
                f"{stack.service.url}{path}", content=content, headers={"content-type": media}
            )
            for path in ("/v1/explain", "/v1/predict")
        ]
        assert [a.status_code for a in answers] == [status, status]
        assert answers[0].json() == answers[1].json()


def test_a_batch_over_the_explain_limit_is_refused_like_an_oversized_predict(stack: Stack) -> None:
    batch = {"instances": readings(101)}
    answer = post(stack, "/v1/explain", batch)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"] == [
        {
            "loc": ["instances"],
            "reason": "batch_too_large",
            "message": "List should have at most 100 items, not 101",
        }
    ]
    assert post(stack, "/v1/predict", batch).status_code == 200  # predict's own limit is 1000


def scrape(url: str) -> str:
    return httpx.get(f"{url}/metrics", timeout=10).text


def test_explainer_and_service_metrics_move(stack: Stack) -> None:
    version = stack.bundle.name
    before = scrape(stack.explainer.metrics_url)
    before_http = scrape(stack.service.metrics_url)
    assert post(stack, "/v1/explain", {"instances": readings(7, seed=9)}).status_code == 200
    after = scrape(stack.explainer.metrics_url)
    after_http = scrape(stack.service.metrics_url)

    def delta(name: str, **labels: str) -> float:
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    assert delta("faultline_explained_readings_total", model_version=version) == 7
    assert delta("faultline_explain_duration_seconds_count", model_version=version) == 1
    window = metric_value(after, "faultline_attribution_window_readings", model_version=version)
    assert 7 <= window <= 1000
    for feature in F.FEATURE_NAMES:
        labels = {"model_version": version, "feature": feature}
        assert f'feature="{feature}"' in after
        assert metric_value(after, "faultline_attribution_mean_abs", **labels) >= 0
    assert metric_value(after, "faultline_attribution_mean_abs", model_version=version) > 0
    reference = json.loads((stack.bundle / METADATA_FILE).read_text()).get("explanation")
    published = metric_value(
        after, "faultline_attribution_reference_mean_abs", feature=F.TORQUE.name
    )
    if reference:  # bundles written before explanations carry none, and none is published
        assert published == pytest.approx(reference["mean_abs"][F.TORQUE.name])
    else:
        assert "faultline_attribution_reference_mean_abs{" not in after
    served = {"handler": "/v1/explain", "method": "POST", "status": "200"}
    assert (
        metric_value(after_http, "http_requests_total", **served)
        - metric_value(before_http, "http_requests_total", **served)
        == 1
    )
    assert metric_value(after_http, "http_request_duration_seconds_count", handler="/v1/explain")


def test_an_explainer_on_another_bundle_is_a_503_naming_both_versions(
    stack: Stack, bundle_path: Path, tmp_path: Path
) -> None:
    """During a rollout the explainer may still serve the other bundle: never its answer."""
    with service(
        bundle_path, tmp_path / "service.log", FAULTLINE_EXPLAINER_URL=stack.explainer.url
    ) as other:
        answer = httpx.post(f"{other.url}/v1/explain", json=F.example_reading(), timeout=60)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    error = answer.json()["error"]
    assert error["type"] == "explainer_version_mismatch"
    assert bundle_path.name in error["message"]
    assert stack.bundle.name in error["message"]
