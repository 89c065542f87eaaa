"""Training run: validate -> tune candidates -> pick -> threshold -> evaluate -> gate -> bundle."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from training import features as F
from training.bundle import SERVING_FILE, write_bundle
from training.evaluate import QualityGate, compute_metrics, model_card, write_plots
from training.pipeline import build_pipeline, candidate_estimators
from training.reference import build_reference
from training.serving import (
    PARITY_TOLERANCE,
    CompiledModel,
    UnsupportedPipelineError,
    check_parity,
    export_serving,
)
from training.validate import DataValidationError, validate

Progress = Callable[[str], None]


class QualityGateError(RuntimeError):
    """The trained model is below a configured minimum; no bundle was written."""


@dataclass
class TrainConfig:
    """Everything a training run depends on (recorded in the bundle metadata)."""

    seed: int = 42
    cv_folds: int = 3
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    threshold_beta: float = 1.0
    candidates: tuple[str, ...] = ("logistic_regression", "random_forest", "hist_gradient_boosting")
    gate: QualityGate = field(default_factory=QualityGate)
    n_jobs: int = -1
    name: str = "faultline-failure"
    # CV PR-AUC differences below this are noise at 10k rows: the cheapest to serve wins then
    tie_tolerance: float = 0.005


@dataclass
class TrainResult:
    """What a run produced."""

    version: str
    metrics: dict[str, Any]
    bundle_path: Path | None
    report_dir: Path
    seconds: float
    gate_failures: list[str]
    metadata: dict[str, Any]


def data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the dataset's canonical CSV form (features and labels)."""
    columns = [*F.FEATURE_NAMES, *(c for c in F.LABEL_COLUMNS if c in frame.columns)]
    return hashlib.sha256(frame[columns].to_csv(index=False).encode()).hexdigest()


def serving_cost(pipeline: Any) -> int:
    """Work per reading at serving time: tree nodes to walk, or coefficients."""
    model = pipeline.named_steps["model"]
    if hasattr(model, "estimators_"):  # random forest
        return int(sum(tree.tree_.node_count for tree in model.estimators_))
    if hasattr(model, "_predictors"):  # histogram gradient boosting
        return int(sum(len(p.nodes) for stage in model._predictors for p in stage))
    return int(getattr(model, "coef_", [[0]])[0].size)


def choose_winner(scores: dict[str, tuple[float, int]], tolerance: float) -> str:
    """Best CV PR-AUC; among candidates within `tolerance` of it, the cheapest to serve."""
    best = max(score for score, _ in scores.values())
    tied = [name for name, (score, _) in scores.items() if score >= best - tolerance]
    return min(tied, key=lambda name: (scores[name][1], name))


def choose_threshold(y: np.ndarray, scores: np.ndarray, beta: float) -> float:
    """The probability threshold that maximizes F-beta on the given (validation) data."""
    precision, recall, thresholds = precision_recall_curve(y, scores)
    precision, recall = precision[:-1], recall[:-1]
    denom = beta**2 * precision + recall
    fbeta = np.where(denom > 0, (1 + beta**2) * precision * recall / np.maximum(denom, 1e-12), 0)
    return float(thresholds[int(np.argmax(fbeta))])


def git_commit() -> str:
    """The current commit, or FAULTLINE_GIT_COMMIT (image builds have no .git), or unknown."""
    if os.environ.get("FAULTLINE_GIT_COMMIT"):
        return os.environ["FAULTLINE_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def train(
    frame: pd.DataFrame,
    source: str,
    models_dir: Path,
    reports_root: Path,
    config: TrainConfig,
    progress: Progress = print,
) -> TrainResult:
    """Run the whole training stage on a labelled dataset."""
    started = time.perf_counter()
    report = validate(frame)
    progress(report.render())
    if not report.ok:
        raise DataValidationError(report)
    fingerprint = data_fingerprint(frame)
    X = frame[list(F.FEATURE_NAMES)]
    y = frame[F.TARGET].to_numpy(int)
    train_share, val_share, test_share = config.split
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_share, stratify=y, random_state=config.seed
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest,
        y_rest,
        test_size=val_share / (train_share + val_share),
        stratify=y_rest,
        random_state=config.seed,
    )
    progress(f"split: train {len(X_train)}, validation {len(X_val)}, test {len(X_test)}")

    searches: dict[str, GridSearchCV] = {}
    cv = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    for name, (estimator, grid) in candidate_estimators(config.seed).items():
        if name not in config.candidates:
            continue
        t0 = time.perf_counter()
        search = GridSearchCV(
            build_pipeline(estimator),
            grid,
            scoring="average_precision",
            cv=cv,
            n_jobs=config.n_jobs,
            refit=True,
        )
        search.fit(X_train, y_train)
        searches[name] = search
        progress(
            f"tuned {name}: CV PR-AUC {search.best_score_:.4f} "
            f"({len(search.cv_results_['params'])} settings x {config.cv_folds} folds, "
            f"{time.perf_counter() - t0:.1f} s)"
        )
    if not searches:
        raise ValueError(f"no known candidate in {config.candidates}")
    winner = choose_winner(
        {n: (float(s.best_score_), serving_cost(s.best_estimator_)) for n, s in searches.items()},
        config.tie_tolerance,
    )
    pipeline = searches[winner].best_estimator_
    threshold = choose_threshold(y_val, pipeline.predict_proba(X_val)[:, 1], config.threshold_beta)
    test_scores = pipeline.predict_proba(X_test)[:, 1]
    metrics = {
        "test": compute_metrics(y_test, test_scores, threshold),
        "validation": compute_metrics(y_val, pipeline.predict_proba(X_val)[:, 1], threshold),
    }
    progress(
        f"winner {winner} ({serving_cost(pipeline)} nodes/coefficients per reading; ties within "
        f"{config.tie_tolerance} CV PR-AUC go to the cheapest), threshold {threshold:.4f} "
        f"(max F{config.threshold_beta:g} on validation)"
    )

    created = datetime.now(UTC)
    params_blob = repr((fingerprint, asdict(config), searches[winner].best_params_)).encode()
    version = f"{created:%Y%m%dT%H%M%SZ}-{hashlib.sha256(params_blob).hexdigest()[:8]}"
    report_dir = reports_root / version
    write_plots(pipeline, X_test, y_test, test_scores, threshold, report_dir, config.seed)
    metadata: dict[str, Any] = {
        "name": config.name,
        "version": version,
        "created_at": created.isoformat(),
        "git_commit": git_commit(),
        "python_version": platform.python_version(),
        "sklearn_version": sklearn.__version__,
        "schema": F.schema_dict(),
        "schema_hash": F.SCHEMA_HASH,
        "target": F.TARGET,
        "threshold": threshold,
        "threshold_objective": f"maximize F{config.threshold_beta:g}",
        "estimator": winner,
        "candidates": {n: float(s.best_score_) for n, s in searches.items()},
        "serving_cost": {n: serving_cost(s.best_estimator_) for n, s in searches.items()},
        "metrics": metrics,
        "params": {
            "seed": config.seed,
            "cv_folds": config.cv_folds,
            "split": list(config.split),
            "best_params": {k: str(v) for k, v in searches[winner].best_params_.items()},
            "gate": asdict(config.gate),
        },
        "data": {
            "source": source,
            "rows": len(frame),
            "sha256": fingerprint,
            "positive_share": float(y.mean()),
        },
    }
    card = model_card(metadata)
    (report_dir / "model_card.md").write_text(card)
    failures = config.gate.failures(metrics["test"])
    bundle_path = None
    if not failures:
        reference = build_reference(X_train, X_test, test_scores, threshold)
        extra = serving_files(pipeline, X_test, progress)
        bundle_path = write_bundle(models_dir, version, pipeline, metadata, reference, card, extra)
    return TrainResult(
        version, metrics, bundle_path, report_dir, time.perf_counter() - started, failures, metadata
    )


def serving_files(pipeline: Any, X_check: pd.DataFrame, progress: Progress) -> dict[str, bytes]:
    """The serving form's files, after proving parity with the Pipeline (empty if unsupported)."""
    try:
        spec, files = export_serving(pipeline)
    except UnsupportedPipelineError as exc:
        progress(f"no serving form ({exc}); the service will use the Pipeline")
        return {}
    gap = check_parity(pipeline, CompiledModel(spec, files), X_check)
    if gap > PARITY_TOLERANCE:
        raise RuntimeError(
            f"serving form disagrees with the Pipeline by {gap:.3g} (> "
            f"{PARITY_TOLERANCE}); refusing to write the bundle"
        )
    progress(
        f"serving form ({spec['estimator']['kind']}) matches the Pipeline "
        f"(max |diff| {gap:.1e} on {len(X_check)} rows)"
    )
    return {**files, SERVING_FILE: (json.dumps(spec, indent=1) + "\n").encode()}
