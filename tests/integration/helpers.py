"""Helpers for integration tests: /metrics lives on its own port, so in-process tests read the
registry; the explainer as a real process (`python -m explainer`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from loadtest.stack import ROOT, free_port, stop, wait_until_ok


def scrape(client: Any) -> str:
    """The exposition the metrics port would serve for the app behind a TestClient."""
    return generate_latest(client.app.state.registry).decode()


def schemathesis(spec: str, work: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`st run` on an OpenAPI document (a URL or a file), seeded, in `work`."""
    command = ["st", "run", spec, *options, "--seed", "1", "--no-color"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=work)


@dataclass
class Explainer:
    """A running `python -m explainer` process."""

    url: str
    metrics_url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def explainer(model_dir: Path, log: Path, **env: str) -> Iterator[Explainer]:
    """Run the real explainer on a free port (metrics on another) until the block ends; the
    block starts once /readyz answers 200."""
    port, metrics_port = free_port(), free_port()
    while metrics_port == port:
        metrics_port = free_port()
    environment = {
        **os.environ,
        "FAULTLINE_EXPLAINER_LOG_FORMAT": "json",
        "FAULTLINE_EXPLAINER_METRICS_PORT": str(metrics_port),
        **env,
    }
    command = [sys.executable, "-m", "explainer", "--model-dir", str(model_dir)]
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/readyz", process, log, timeout=120)  # shap's import is slow
        yield Explainer(url, f"http://127.0.0.1:{metrics_port}", process, log)
    finally:
        stop(process)


def log_events(log: Path) -> list[dict[str, Any]]:
    """The JSON lines of a process log."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
