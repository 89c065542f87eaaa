"""`faultline report`: Evidently drift and quality reports from logged prediction events.

Asserted on Evidently's result JSON (the drift tests per column), and on the page a headless
Chromium renders from the HTML report (Debian's `chromium`; `.ci/run` installs it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from model import features as F
from service import report as R
from service.cli import app
from training.data import generate

pytestmark = [
    pytest.mark.slow,  # Evidently computes and renders several reports: ~10 s
    pytest.mark.skipif(
        importlib.util.find_spec("evidently") is None,
        reason="the `report` dependency group is not installed",
    ),
]

SHIFTED = F.AIR_TEMPERATURE.name
STEADY = (F.TORQUE.name, F.TOOL_WEAR.name, F.PRODUCT_TYPE.name)


def _events(path: Path, bundle: Path, rows: int = 600) -> Path:
    """A service log: prediction events (the Predictor's shape) with air temperature +4 K."""
    # a random sample of a long run: consecutive rows follow the temperature random walk
    frame = generate(6000, seed=11).sample(rows, random_state=0).reset_index(drop=True)
    frame[SHIFTED] += 4.0
    scores, threshold, version = R.score(frame, bundle)
    lines = [json.dumps({"event": "request", "status": 200}), "a line that is not JSON"]
    for start in range(0, rows, 4):
        part = frame.iloc[start : start + 4]
        lines.append(
            json.dumps(
                {
                    "event": "prediction",
                    "model_version": version,
                    "inputs": part[list(F.FEATURE_NAMES)].to_dict("records"),
                    "outputs": [
                        {"failure_probability": p, "failure": bool(p >= threshold)}
                        for p in scores[start : start + 4].tolist()
                    ],
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _drifted(result_json: Path) -> set[str]:
    return set(R.drifted_columns(json.loads(result_json.read_text())))


def test_events_are_read_one_row_per_reading(tmp_path: Path, bundle_path: Path) -> None:
    frame = R.read_events(_events(tmp_path / "events.jsonl", bundle_path, rows=40))
    assert len(frame) == 40
    assert list(frame.columns) == [*F.FEATURE_NAMES, R.SCORE]
    assert frame[R.SCORE].between(0, 1).all()


def test_binned_reference_keeps_the_stored_proportions(bundle_path: Path) -> None:
    profile = json.loads((bundle_path / "reference.json").read_text())
    frame = R.binned_reference(profile)
    assert len(frame) == profile["rows"]
    shares = frame[F.TORQUE.name].value_counts(normalize=True).sort_index().to_numpy()
    expected = np.asarray(profile["numeric"][F.TORQUE.name]["proportions"])
    np.testing.assert_allclose(shares, expected[expected > 0], atol=1 / profile["rows"])


@pytest.fixture(scope="module")
def cli_report(tmp_path_factory: pytest.TempPathFactory, bundle_path: Path) -> tuple[Path, str]:
    """`faultline report` run once on shifted events with labelled readings: (out dir, output)."""
    tmp_path = tmp_path_factory.mktemp("report")
    events = _events(tmp_path / "events.jsonl", bundle_path)
    labelled = tmp_path / "labelled.csv"
    generate(1500, seed=5)[[*F.FEATURE_NAMES, F.TARGET]].to_csv(labelled, index=False)
    out = tmp_path / "reports"
    result = CliRunner().invoke(
        app,
        [
            "report",
            str(events),
            "--model-dir",
            str(bundle_path),
            "--labelled",
            str(labelled),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_cli_report_names_the_shifted_feature(cli_report: tuple[Path, str]) -> None:
    out, output = cli_report
    result_output = output
    assert SHIFTED in result_output
    drifted = _drifted(out / "drift.json")
    assert SHIFTED in drifted
    assert not drifted & set(STEADY)
    html = (out / "drift.html").read_text()
    assert SHIFTED in html and "Drift Score" in html  # the per-column drift table
    quality = json.loads((out / "quality.json").read_text())
    names = [m["metric_name"] for m in quality["metrics"]]
    assert any(n.startswith("RocAuc") for n in names)
    assert (out / "quality.html").stat().st_size > 0


def test_the_html_report_shows_the_shifted_feature_in_a_browser(
    cli_report: tuple[Path, str],
) -> None:
    """Evidently's page is drawn by JavaScript from embedded data: outside its scripts the HTML
    names no column. The DOM a headless Chromium renders shows the drift table."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium is needed to render the Evidently report (apt-get install chromium)"
            )
        pytest.skip("chromium not installed")
    html = cli_report[0] / "drift.html"
    rendered = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=15000",
            "--dump-dom",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    def page_text(document: str) -> str:
        document = re.sub(r"<script.*?</script>", " ", document, flags=re.S)
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", document))

    assert SHIFTED not in page_text(html.read_text())  # only JavaScript can show it
    text = page_text(rendered)
    assert re.search(rf"{SHIFTED} \w+ Detected", text), text[:2000]
    for steady in STEADY:
        assert re.search(rf"{steady} \w+ Not Detected", text), steady


def test_raw_reference_csv_names_the_shifted_feature(tmp_path: Path, bundle_path: Path) -> None:
    reference = tmp_path / "train.csv"
    generate(4000, seed=3).to_csv(reference, index=False)
    result = R.drift_report(
        _events(tmp_path / "events.jsonl", bundle_path), bundle_path, tmp_path / "out", reference
    )
    assert SHIFTED in result.drifted
    assert not set(result.drifted) & set(STEADY)
    assert result.html.is_file()


def test_missing_evidently_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "evidently", None)  # an import of it raises ImportError
    with pytest.raises(R.ReportUnavailableError, match="uv sync --group report"):
        R._evidently()


def test_a_log_without_prediction_events_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(json.dumps({"event": "request"}) + "\n")
    with pytest.raises(ValueError, match="FAULTLINE_PREDICTION_LOG_SAMPLE_RATE"):
        R.read_events(log)


def test_uci_column_names_are_accepted(tmp_path: Path) -> None:
    frame = generate(20, seed=1).rename(columns={v: k for k, v in F.UCI_TO_NAME.items()})
    path = tmp_path / "uci.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    assert list(R.read_readings(path).columns) == list(F.FEATURE_NAMES)
