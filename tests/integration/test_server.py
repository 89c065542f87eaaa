"""The real uvicorn process: graceful drain on SIGTERM, multiprocess metrics, schemathesis."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest

from loadtest.stack import service
from model import features as F
from tests.conftest import metric_value
from tests.integration.helpers import explainer, schemathesis

pytestmark = pytest.mark.slow


def test_sigterm_drains_in_flight_requests(bundle_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    # every prediction takes 1.5 s, so requests are surely in flight at SIGTERM
    with service(
        bundle_path, log, FAULTLINE_FAULT_DELAY_MS="1500", FAULTLINE_DRAIN_SECONDS="10"
    ) as running:
        url, process = running.url, running.process
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [
                pool.submit(httpx.post, f"{url}/v1/predict", json=F.example_reading(), timeout=20)
                for _ in range(8)
            ]
            deadline = time.monotonic() + 15  # all 8 in flight (a busy machine connects slowly)
            while time.monotonic() < deadline:
                text = httpx.get(f"{running.metrics_url}/metrics").text
                if metric_value(text, "faultline_http_requests_in_flight") >= 8:
                    break
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            statuses = [f.result().status_code for f in futures]
        assert process.wait(timeout=15) == 0
    assert statuses == [200] * 8
    events = [
        json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")
    ]
    assert "shutdown_complete" in events
    assert events.count("request") == 8


def test_multiprocess_metrics_add_up(bundle_path: Path, tmp_path: Path) -> None:
    with service(bundle_path, tmp_path / "server.log", workers=2) as running:
        url = running.url
        for _ in range(40):  # a new connection each time: spread over both workers
            assert httpx.post(f"{url}/v1/predict", json=F.example_reading()).is_success
        assert httpx.get(f"{url}/metrics").status_code == 404  # metrics have their own port
        scrapes = [httpx.get(f"{running.metrics_url}/metrics").text for _ in range(4)]
    for text in scrapes:  # whichever worker answers, it reports both workers' counts
        assert metric_value(text, "faultline_predictions_total") == 40
        assert metric_value(text, "http_requests_total", handler="/v1/predict") == 40
        assert metric_value(text, "faultline_model_ready") == 1


@pytest.mark.skipif(
    shutil.which("st") is None and not Path(".venv/bin/st").exists(),
    reason="schemathesis CLI not installed",
)
def test_schemathesis_finds_nothing(bundle_path: Path, tmp_path: Path) -> None:
    # with its explainer: /v1/explain's 503 while explanations are off would be a server error
    with (
        explainer(bundle_path, tmp_path / "explainer.log") as explaining,
        service(
            bundle_path,
            tmp_path / "server.log",
            FAULTLINE_OPENAPI="true",
            FAULTLINE_EXPLAINER_URL=explaining.url,
            FAULTLINE_EXPLAIN_TIMEOUT_SECONDS="60",  # a loaded 2-core machine: never a 504
        ) as running,
    ):
        result = schemathesis(
            f"{running.url}/openapi.json", tmp_path, "--checks", "all", "--max-examples", "60"
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
