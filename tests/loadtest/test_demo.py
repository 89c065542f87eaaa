"""`make demo`, the main job, run for real (short): service, Prometheus, Locust, a summary with
targets and verdicts, every artifact listed, progress lines when output is not a terminal."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]


def test_the_demo_judges_its_run_and_says_where_everything_is(
    bundle_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.demo",
            "--models-dir",
            str(bundle_path.parent),
            "--seconds",
            "12",
            "--users",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    text = done.stdout
    # The verdict itself depends on the machine (a loaded CI runner can push the server's p95
    # past 10 ms): what must hold is that the exit code follows it and a failure says why.
    # The verdict logic on fixed figures is in test_verdicts.py.
    passed = "verdict: PASSED" in text
    assert done.returncode == (0 if passed else 1), text + done.stderr
    if not passed:
        assert re.search(r"verdict: FAILED: the (SERVICE broke its SLO: .+ > |CLIENT saw )", text)
    assert "steady load: 2 users, 0/12 s" in text and "steady load: 2 users, 10/12 s" in text
    for row in ("throughput", "5xx ratio", "p95 latency", "p99 latency", "alerts"):
        assert row in text
    assert "<= 10 ms (server)" in text and "<= 25 ms (server)" in text
    assert f"{'Locust HTML report':26} {out / 'locust.html'}" in text
    assert (out / "locust.html").is_file() and (out / "service.log").is_file()
    assert "uv run mlflow ui --backend-store-uri sqlite:///artifacts/mlflow.db" in text
    assert "(not written)" not in text.split("model bundle")[0]  # the run's own outputs exist
