"""A real service and its explainer scraped by a real Prometheus: rules and dashboards have
data, drift alerts.

Normal traffic (and explanations through the service's /v1/explain), then drifted traffic;
every recording rule and every Service/Model dashboard query must return data (the attribution
rules and panels included), the drift alert must be inactive before and pending/firing after
the drift (real rule evaluation), and Prometheus's counts and latency must agree with what this
client measured.
"""

from __future__ import annotations

import http.client
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from loadtest import server_slo
from loadtest.stack import Prometheus, Service, prometheus, service
from model import features as F
from service.metrics import LATENCY_BUCKETS
from tests.conftest import FIXTURE_ROWS, FIXTURE_SEED
from tests.integration.helpers import explainer
from tests.observability.test_dashboards import dashboards, queries
from training import data as D

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]
NORMAL, INVALID_EVERY, DRIFTED, EXPLAINED = 600, 20, 500, 100


class Client:
    """A keep-alive HTTP client with little overhead, timing each request."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)
        self.latencies: list[float] = []
        self.statuses: list[int] = []

    def post(self, body: dict[str, Any]) -> None:
        payload = json.dumps(body)
        started = time.perf_counter()
        try:
            response = self._send(payload)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # the server closed the kept-alive connection while it was idle (between phases):
            # the request never reached it; send it again on a new connection
            self.connection.close()
            response = self._send(payload)
        response.read()
        self.latencies.append(time.perf_counter() - started)
        self.statuses.append(response.status)

    def _send(self, payload: str) -> http.client.HTTPResponse:
        headers = {"Content-Type": "application/json"}
        self.connection.request("POST", "/v1/predict", payload, headers)
        return self.connection.getresponse()


@pytest.fixture(scope="module")
def stack(
    real_bundle_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, Prometheus]]:
    # the real bundle: "no drift alert on unshifted traffic" needs a reference that covers the
    # generator's slow temperature walk (the tiny bundle's 2,000 rows do not: PSI 1.2)
    work = tmp_path_factory.mktemp("live")
    with (
        explainer(real_bundle_path, work / "explainer.log") as explaining,
        service(
            real_bundle_path,
            work / "service.log",
            FAULTLINE_DRIFT_WINDOW="300",
            FAULTLINE_DRIFT_MIN_READINGS="50",
            FAULTLINE_DRIFT_UPDATE_SECONDS="0.2",
            FAULTLINE_EXPLAINER_URL=explaining.url,
            FAULTLINE_EXPLAIN_TIMEOUT_SECONDS="30",  # a loaded 2-core machine
        ) as running,
        # the explainer's target has no track: one explainer per release (as in the chart)
        prometheus(
            work / "prometheus",
            [(running.url, {"track": "stable"}), (explaining.metrics_url, {})],
        ) as prom,
    ):
        yield running, prom


def _sample(rows: int, seed: int) -> list[dict[str, Any]]:
    """Readings drawn at random from the bundle's training data. Temperatures are random walks:
    consecutive rows, or another seed's realization, would rightly look drifted."""
    frame = D.generate(FIXTURE_ROWS, FIXTURE_SEED)[list(F.FEATURE_NAMES)]
    return frame.sample(rows, random_state=seed).to_dict(orient="records")  # type: ignore[no-any-return]


def _send_normal(client: Client) -> None:
    readings = _sample(NORMAL, 5)
    for i, reading in enumerate(readings):
        if i % INVALID_EVERY == 0:
            client.post({**reading, F.TORQUE.name: -5.0})  # out of range: 422
        else:
            client.post(reading)


def _send_explanations(url: str) -> None:
    """Explanations of sampled readings through the service's /v1/explain (the explainer's
    attribution window, and so the attribution rules and panels, fill from these)."""
    readings = _sample(EXPLAINED, 7)
    for start in range(0, EXPLAINED, 25):
        response = httpx.post(
            f"{url}/v1/explain", json={"instances": readings[start : start + 25]}, timeout=60
        )
        assert response.status_code == 200, response.text


def _bucket_index(seconds: float) -> int:
    return int(np.searchsorted(LATENCY_BUCKETS, seconds, side="left"))


def test_rules_dashboards_and_drift_alert_through_real_evaluation(
    stack: tuple[Service, Prometheus],
) -> None:
    running, prom = stack
    client = Client(running.url)
    _send_normal(client)
    sent = len(client.statuses)
    invalid = sum(1 for s in client.statuses if s == 422)
    assert invalid == NORMAL // INVALID_EVERY and client.statuses.count(200) == sent - invalid

    # counts agree exactly once the last scrape is in
    handler = 'handler="/v1/predict"'
    prom.wait_for(f"sum(http_requests_total{{{handler}}})", lambda v: v == sent)
    assert prom.value(f'sum(http_requests_total{{{handler}, status="422"}})') == invalid
    assert prom.value("sum(faultline_predictions_total)") == sent - invalid

    # latency: Prometheus's median is within the histogram's resolution of the client's
    client_p50 = float(np.median(client.latencies))
    prom_p50 = prom.value(
        f"histogram_quantile(0.5, sum by (le) (http_request_duration_seconds_bucket{{{handler}}}))"
    )
    assert prom_p50 is not None
    assert abs(_bucket_index(prom_p50) - _bucket_index(client_p50)) <= 1, (prom_p50, client_p50)
    assert prom_p50 <= client_p50 + 0.001  # the server's view cannot be much slower

    _send_explanations(running.url)
    # every recording rule has data (rules evaluate every second)
    recording = yaml.safe_load((ROOT / "prometheus/rules/faultline-recording.yml").read_text())
    names = [r["record"] for g in recording["groups"] for r in g["rules"]]
    deadline = time.monotonic() + 30
    missing = names
    while missing and time.monotonic() < deadline:
        missing = [name for name in names if not prom.query(name)]
        time.sleep(1)
    assert not missing, f"recording rules without data: {missing}"

    # every Service and Model dashboard query has data
    empty = [
        f"{board}: {title}: {expr}"
        for board in ("faultline-service.json", "faultline-model.json")
        for title, expr in queries(dashboards()[board])
        if not prom.query(expr)
    ]
    assert not empty, "\n".join(empty)

    drift_alerts = [a for a in prom.alerts() if a["labels"]["alertname"] == "FaultlineInputDrift"]
    assert drift_alerts == []
    calm = prom.value(f'max(faultline_feature_drift_psi{{feature="{F.TORQUE.name}"}})')
    assert calm is not None and calm < 0.25

    # drifted traffic: torque shifted by 25 Nm
    drifted = _sample(DRIFTED, 6)
    for reading in drifted:
        client.post({**reading, F.TORQUE.name: float(reading[F.TORQUE.name]) + 25.0})
    prom.wait_for(
        f'faultline:feature_drift_psi:max{{feature="{F.TORQUE.name}"}}', lambda v: v > 0.25
    )
    deadline = time.monotonic() + 30
    active: list[dict[str, Any]] = []
    while not active and time.monotonic() < deadline:
        active = [
            a
            for a in prom.alerts()
            if a["labels"]["alertname"] == "FaultlineInputDrift"
            and a["labels"].get("feature") == F.TORQUE.name
        ]
        time.sleep(1)
    assert active and active[0]["state"] in {"pending", "firing"}
    assert (
        active[0]["labels"]["model_version"]
        == httpx.get(f"{running.url}/v1/model").json()["version"]
    )


def test_server_side_slo_gate_reads_what_the_service_measured(
    stack: tuple[Service, Prometheus],
) -> None:
    """The gate CI uses where the load generator is the bottleneck: real histogram, real 5xx."""
    running, prom = stack
    client = Client(running.url)
    total = 'sum(http_requests_total{handler="/v1/predict"})'
    # the series must exist in Prometheus before the counted requests: increase() over a
    # series whose first sample already holds them all is 0 (a race that failed once in CI)
    client.post(_sample(1, 5)[0])
    before = prom.wait_for(total, lambda v: v >= 1) or 0.0
    for reading in _sample(100, 6):
        client.post(reading)
    prom.wait_for(total, lambda v: v >= before + 100)
    figures = server_slo.measure(prom.url, 'job=~".*faultline.*"', "5m")
    assert figures.requests >= 100
    assert figures.error_ratio == 0.0  # 422s are the client's, never counted as 5xx
    assert 0 < figures.p95_ms <= figures.p99_ms < 1000
    assert server_slo.violations(figures, p95_ms=1000, p99_ms=1000) == []
    assert any("p99" in v for v in server_slo.violations(figures, p99_ms=figures.p99_ms / 2))
    empty = server_slo.measure(prom.url, 'job="no-such-job"', "5m")
    assert server_slo.violations(empty) == [
        "the service recorded no /v1/predict requests in the window"
    ]
