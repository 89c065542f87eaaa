"""Experiment tracking with MLflow (training only; the service never imports this)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

EXPERIMENT = "faultline"


def default_tracking_uri(artifacts_dir: Path) -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store inside the project's artifacts."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{artifacts_dir.resolve()}/mlflow.db"


def log_run(
    artifacts_dir: Path,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    files: list[Path],
    bundle_dir: Path | None,
    tags: dict[str, str],
) -> str:
    """Record one training run (params, metrics, plots, the bundle); return the run id."""
    import mlflow  # deferred: heavy, and only training needs it

    # after the import: mlflow sets its own logger to INFO on import, and its first run prints
    # the SQLite table creation and migrations otherwise
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI: read the user's own setting
    # first, and put it back after, or the next run would log into this run's store and the
    # artifacts would land in ./mlruns of the working directory
    users = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        mlflow.set_tracking_uri(default_tracking_uri(artifacts_dir))
        if mlflow.get_experiment_by_name(EXPERIMENT) is None:
            location = None if users else (artifacts_dir / "mlruns").resolve().as_uri()
            mlflow.create_experiment(EXPERIMENT, artifact_location=location)
        mlflow.set_experiment(EXPERIMENT)
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.set_tags(tags)
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics(metrics)
            for path in files:
                mlflow.log_artifact(str(path), artifact_path="reports")
            if bundle_dir is not None:
                mlflow.log_artifacts(str(bundle_dir), artifact_path=f"bundle/{bundle_dir.name}")
            return str(run.info.run_id)
    finally:
        if users is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = users
