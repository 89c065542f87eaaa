"""Canary analysis with real processes: stable and canary services, a real Prometheus with
`track` labels, traffic split between them, and the `faultline canary analyze` CLI.

(a) a good retrain is promoted; (b) a model trained on corrupted labels is rolled back by the
prediction-distribution check; (c) a canary that errors or is slow is rolled back;
(d) no traffic is inconclusive.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtest.stack import prometheus, service
from model import features as F
from tests.conftest import FIXTURE_ROWS, FIXTURE_SEED, train_small
from tests.k8s import argo
from tests.k8s.test_chart import render, values_of
from training import data as D
from training.evaluate import QualityGate

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]
REQUESTS = 700
SERVICE_ENV = {"FAULTLINE_DRIFT_MIN_READINGS": "50", "FAULTLINE_DRIFT_UPDATE_SECONDS": "0.2"}


def _training_frame() -> Any:
    return D.generate(FIXTURE_ROWS, FIXTURE_SEED)


def _bootstrap(frame: Any, seed: int) -> Any:
    """Fresh rows from the same distribution (a resample; ids renumbered)."""
    sample = frame.sample(frac=1.0, replace=True, random_state=seed).reset_index(drop=True)
    return sample.assign(udi=range(1, len(sample) + 1))


@pytest.fixture(scope="module")
def good_canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = train_small(
        tmp_path_factory.mktemp("good"), seed=12, frame=_bootstrap(_training_frame(), 3)
    )
    assert result.bundle_path is not None
    return result.bundle_path


@pytest.fixture(scope="module")
def bad_canary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = _bootstrap(_training_frame(), 4).drop(columns=list(F.FAILURE_MODES))
    rng = random.Random(5)
    corrupted = [i for i in range(len(frame)) if rng.random() < 0.4]
    frame.loc[corrupted, F.TARGET] = 1  # 40 % of rows labelled as failures
    result = train_small(
        tmp_path_factory.mktemp("bad"),
        seed=13,
        frame=frame,
        gate=QualityGate(0.0, 0.0, 0.0, 1.0, 1.0, 100.0),
    )
    assert result.bundle_path is not None
    return result.bundle_path


def _traffic(urls: list[str], requests: int) -> None:
    readings = (
        _training_frame()[list(F.FEATURE_NAMES)]
        .sample(requests, random_state=9)
        .to_dict(orient="records")
    )
    rng = random.Random(1)
    targets = [rng.choice(urls) for _ in readings]

    def send(pair: tuple[str, dict[str, Any]]) -> int:
        return httpx.post(f"{pair[0]}/v1/predict", json=pair[1], timeout=10).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(send, zip(targets, readings, strict=True)))


def _analyze(
    stable: Path, canary: Path, work: Path, requests: int, **canary_env: str
) -> tuple[int, dict[str, Any], str]:
    with (
        service(stable, work / "stable.log", **SERVICE_ENV) as s,
        service(canary, work / "canary.log", **SERVICE_ENV, **canary_env) as c,
        prometheus(
            work / "prom", [(s.url, {"track": "stable"}), (c.url, {"track": "canary"})]
        ) as prom,
    ):
        prom.wait_for("count(up == 1)", lambda v: v == 2)
        if requests:
            _traffic([s.url, c.url], requests)
            prom.wait_for(
                'sum(http_requests_total{handler="/v1/predict"})', lambda v: v == requests
            )
            prom.wait_for("count(faultline_drift_window_readings)", lambda v: v == 2)
        out = work / "verdict.json"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "service",
                "canary",
                "analyze",
                "--prometheus",
                prom.url,
                "--window",
                "1m",
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        report = json.loads(out.read_text()) if out.exists() else {}
        _argo_agrees(prom.url, report)
    return run.returncode, report, run.stdout


def _argo_agrees(prometheus_url: str, report: dict[str, Any]) -> None:
    """The chart's AnalysisTemplate, measured on the same Prometheus with Argo's rules, reaches
    the CLI's verdict and names the same failing checks."""
    [template] = (
        o
        for o in render(values_of(ROOT / "helm" / "faultline" / "ci" / "rollout-values.yaml"))
        if o["kind"] == "AnalysisTemplate"
    )
    results = {}
    for metric in template["spec"]["metrics"]:
        query = (
            metric["provider"]["prometheus"]["query"]
            .replace('job="faultline", namespace="ml"', 'job=~".*faultline.*"')
            .replace("{{args.window}}", "1m")
        )
        body = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}).json()
        assert body["status"] == "success", body
        results[metric["name"]] = [float(v["value"][1]) for v in body["data"]["result"]]
    phase, failed = argo.run_once(template, results)
    expected = {"promote": "Successful", "rollback": "Failed", "inconclusive": "Inconclusive"}
    assert phase == expected[report["verdict"]], (phase, results, report)
    if report["verdict"] == "rollback":
        assert failed == {c["name"] for c in report["checks"] if c["result"] == "fail"}


def _failed(report: dict[str, Any]) -> set[str]:
    return {c["name"] for c in report["checks"] if c["result"] != "pass"}


def test_a_good_retrain_is_promoted(
    real_bundle_path: Path, good_canary: Path, tmp_path: Path
) -> None:
    code, report, table = _analyze(real_bundle_path, good_canary, tmp_path, REQUESTS)
    assert (code, report["verdict"]) == (0, "promote"), table
    assert "verdict: PROMOTE" in table


def test_b_a_model_with_shifted_predictions_is_rolled_back(
    real_bundle_path: Path, bad_canary: Path, tmp_path: Path
) -> None:
    code, report, table = _analyze(real_bundle_path, bad_canary, tmp_path, REQUESTS)
    assert (code, report["verdict"]) == (1, "rollback"), table
    assert "prediction-distribution" in _failed(report), table
    assert "error-ratio" not in _failed(report), table


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ({"FAULTLINE_FAULT_ERROR_RATIO": "0.2"}, "error-ratio"),
        ({"FAULTLINE_FAULT_DELAY_MS": "40"}, "p99-latency"),
    ],
    ids=["errors", "slow"],
)
def test_c_a_failing_or_slow_canary_is_rolled_back(
    real_bundle_path: Path, tmp_path: Path, fault: dict[str, str], check: str
) -> None:
    code, report, table = _analyze(real_bundle_path, real_bundle_path, tmp_path, REQUESTS, **fault)
    assert (code, report["verdict"]) == (1, "rollback"), table
    assert check in _failed(report), table
    assert "prediction-distribution" not in _failed(report), table


def test_d_no_traffic_is_inconclusive(real_bundle_path: Path, tmp_path: Path) -> None:
    code, report, table = _analyze(real_bundle_path, real_bundle_path, tmp_path, 0)
    assert (code, report["verdict"]) == (2, "inconclusive"), table
    assert {"canary-traffic", "stable-traffic"} <= _failed(report)
