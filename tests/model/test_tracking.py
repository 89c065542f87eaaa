"""MLflow runs land in the artifacts folder they were given, every time, never in ./mlruns."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from training.tracking import log_run

pytestmark = pytest.mark.slow


def _artifact_roots(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select name, artifact_location from experiments").fetchall()
    return [location for name, location in rows if name == "faultline"]


def test_two_runs_in_one_process_each_go_to_their_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "plot.txt").write_text(name)
        log_run(folder, name, {"p": 1}, {"m": 1.0}, [folder / "plot.txt"], None, {})
        assert _artifact_roots(folder / "mlflow.db") == [(folder / "mlruns").resolve().as_uri()]
        assert list((folder / "mlruns").rglob("plot.txt"))
    assert not (tmp_path / "mlruns").exists()  # nothing in the working directory
    assert "MLFLOW_TRACKING_URI" not in os.environ  # mlflow exported it; it is put back
