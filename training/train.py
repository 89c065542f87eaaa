"""Training: validate -> tune -> pick -> calibrate -> threshold -> evaluate -> gate -> bundle."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    StratifiedKFold,
    train_test_split,
)

from model import features as F
from model.bundle import SERVING_FILE, write_bundle
from model.serving_form import ServingForm
from training.evaluate import (
    QualityGate,
    compute_metrics,
    expected_cost,
    model_card,
    verdict,
    write_plots,
)
from training.explain import explanation_entry, holdout_attributions, write_attribution_plots
from training.export import PARITY_TOLERANCE, UnsupportedPipelineError, check_parity, export_serving
from training.fidelity import fidelity_report, render_fidelity
from training.pipeline import build_pipeline, candidate_estimators
from training.reference import build_reference
from training.validate import DataValidationError, validate

Progress = Callable[[str], None]
HEARTBEAT_SECONDS = 10.0


@contextmanager
def heartbeat(progress: Progress, doing: str, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """A progress line every `every` seconds while a long step runs (a grid search can take
    a minute on a busy machine; logs and CI would otherwise see nothing)."""
    done = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not done.wait(every):
            progress(f"  ... {doing}, {time.perf_counter() - started:.0f} s so far")

    thread = threading.Thread(target=beat, name="training-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class QualityGateError(RuntimeError):
    """The trained model is below a configured minimum; no bundle was written."""


@dataclass
class TrainConfig:
    """Everything a training run depends on (recorded in the bundle metadata)."""

    seed: int = 42
    cv_folds: int = 3
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    # a missed failure costs this many false alarms: flag when P(failure) >= 1 / (1 + ratio)
    cost_ratio: float = 10.0
    # calibration methods tried (cross-fitted on the training split), the best log loss on
    # the validation split wins; folds of the cross-fitting
    calibration: tuple[str, ...] = ("isotonic", "sigmoid")
    calibration_folds: int = 5
    candidates: tuple[str, ...] = ("logistic_regression", "random_forest", "hist_gradient_boosting")
    gate: QualityGate = field(default_factory=QualityGate)
    # per candidate, a search grid that replaces its default (training.pipeline)
    grids: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    n_jobs: int = -1
    name: str = "faultline-failure"
    # CV PR-AUC differences below this are noise at 10k rows: the cheapest to serve wins then
    tie_tolerance: float = 0.005
    # held-out attributions: the bundle's `explanation` reference and the report plots (shap)
    explain: bool = True


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
    attribution_plots: list[Path] = field(default_factory=list)  # in report_dir


# What a params file (the `train` section of the DVC pipeline's params.yaml) may set
PARAM_KEYS = (
    "seed",
    "cv_folds",
    "cost_ratio",
    "calibration",
    "calibration_folds",
    "candidates",
    "grids",
    "gate",
)


def apply_params(config: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """`config` with the values of a params mapping (a params file's `train` section).

    Unknown keys, gate limits and candidates are refused: a typo must not train the defaults.
    """
    from dataclasses import replace

    from training.pipeline import candidate_estimators

    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise ValueError(f"unknown training params {unknown}; known: {list(PARAM_KEYS)}")
    values = dict(params)
    for key in ("calibration", "candidates"):
        if key in values:
            values[key] = tuple(values[key])
    if "gate" in values:
        gate = asdict(config.gate)
        unknown = sorted(set(values["gate"]) - set(gate))
        if unknown:
            raise ValueError(f"unknown gate limits {unknown}; known: {list(gate)}")
        values["gate"] = QualityGate(**{**gate, **values["gate"]})
    if "grids" in values:
        unknown = sorted(set(values["grids"]) - set(candidate_estimators(config.seed)))
        if unknown:
            raise ValueError(f"grids for unknown candidates {unknown}")
        values["grids"] = {**config.grids, **values["grids"]}
    return replace(config, **values)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the dataset's canonical CSV form (features and labels)."""
    columns = [*F.FEATURE_NAMES, *(c for c in F.LABEL_COLUMNS if c in frame.columns)]
    return hashlib.sha256(frame[columns].to_csv(index=False).encode()).hexdigest()


def serving_cost(pipeline: Any) -> int:
    """Work per reading at serving time: tree nodes to walk, or coefficients."""
    model = base_pipeline(pipeline).named_steps["model"]
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


def bayes_threshold(cost_ratio: float) -> float:
    """The decision threshold for calibrated probabilities at a miss / false-alarm cost ratio.

    Flagging a reading costs a false alarm with probability 1 - p; not flagging it costs a
    miss (cost_ratio false alarms) with probability p. Flag when p x ratio >= 1 - p.
    """
    if cost_ratio <= 0:
        raise ValueError("cost_ratio must be positive")
    return 1.0 / (1.0 + cost_ratio)


def best_cost_threshold(
    y: np.ndarray, scores: np.ndarray, cost_ratio: float
) -> tuple[float, float]:
    """(threshold, cost per reading) minimizing cost_ratio x misses + false alarms on `y`.

    A check of the calibration, not the rule: with honest probabilities the best threshold on
    held-out data lands near 1 / (1 + cost_ratio).
    """
    candidates = np.unique(np.append(scores, np.inf))
    order = np.sort(scores)
    positives = np.sort(scores[y == 1])
    missed = np.searchsorted(positives, candidates, side="left")  # positives below threshold
    flagged = len(order) - np.searchsorted(order, candidates, side="left")
    false_alarms = flagged - (len(positives) - missed)
    cost = (cost_ratio * missed + false_alarms) / max(len(y), 1)
    best = int(np.argmin(cost))
    return float(candidates[best]), float(cost[best])


def base_pipeline(model: Any) -> Any:
    """The fitted Pipeline inside a calibrated model (or the model itself)."""
    if isinstance(model, CalibratedClassifierCV):
        return model.calibrated_classifiers_[0].estimator
    return model


def calibration_method(model: Any) -> str:
    """'isotonic', 'sigmoid', or 'none' for an uncalibrated Pipeline."""
    return str(model.method) if isinstance(model, CalibratedClassifierCV) else "none"


def calibrate(
    pipeline: Any,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    config: TrainConfig,
    progress: Progress,
) -> tuple[Any, dict[str, dict[str, float]]]:
    """Cross-fitted calibration of the tuned Pipeline; the method is chosen on validation.

    Each calibrator learns on out-of-fold predictions of the training split (readings the
    model that scored them never trained on); the Pipeline itself is refitted on the whole
    training split (ensemble=False: one model to serve). The method with the lowest
    validation log loss wins.
    """
    fitted: dict[str, Any] = {}
    scores: dict[str, dict[str, float]] = {}
    for method in config.calibration:
        t0 = time.perf_counter()
        model = CalibratedClassifierCV(
            clone(pipeline),
            method=method,
            cv=config.calibration_folds,  # stratified folds of the (already shuffled) split
            ensemble=False,
            n_jobs=config.n_jobs,
        )
        with heartbeat(progress, f"calibrating ({method})"):
            model.fit(X_train, y_train)
        p_val = model.predict_proba(X_val)[:, 1]
        fitted[method] = model
        scores[method] = {
            "log_loss": float(log_loss(y_val, np.clip(p_val, 1e-15, 1 - 1e-15), labels=[0, 1])),
            "brier": float(brier_score_loss(y_val, p_val)),
        }
        progress(
            f"calibrated ({method}, {config.calibration_folds}-fold cross-fitted): validation "
            f"log loss {scores[method]['log_loss']:.4f}, Brier {scores[method]['brier']:.4f} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    if not fitted:
        return pipeline, scores
    best = min(scores, key=lambda m: (scores[m]["log_loss"], m))
    return fitted[best], scores


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
        grid = config.grids.get(name, grid)
        t0 = time.perf_counter()
        search = GridSearchCV(
            build_pipeline(estimator),
            grid,
            scoring="average_precision",
            cv=cv,
            n_jobs=config.n_jobs,
            refit=True,
        )
        settings = len(ParameterGrid(grid)) * config.cv_folds
        with heartbeat(progress, f"tuning {name}: {settings} fits"):
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
    tuned = searches[winner].best_estimator_
    progress(
        f"winner {winner} ({serving_cost(tuned)} nodes/coefficients per reading; ties within "
        f"{config.tie_tolerance} CV PR-AUC go to the cheapest)"
    )
    model, calibration_scores = calibrate(tuned, X_train, y_train, X_val, y_val, config, progress)
    threshold = bayes_threshold(config.cost_ratio)
    val_scores = model.predict_proba(X_val)[:, 1]
    test_scores = model.predict_proba(X_test)[:, 1]
    metrics = {
        "test": compute_metrics(y_test, test_scores, threshold),
        "validation": compute_metrics(y_val, val_scores, threshold),
    }
    for split in metrics.values():
        split["expected_cost"] = expected_cost(split, config.cost_ratio)
    best_threshold, best_cost = best_cost_threshold(y_val, val_scores, config.cost_ratio)
    progress(
        f"calibration: {calibration_method(model)}; threshold {threshold:.4f} = 1 / (1 + cost "
        f"ratio {config.cost_ratio:g}): a missed failure costs {config.cost_ratio:g} false "
        f"alarms; validation cost {metrics['validation']['expected_cost']:.4f} per reading "
        f"(best threshold in hindsight {best_threshold:.4f}: {best_cost:.4f})"
    )
    fidelity = fidelity_report(frame)
    progress("fidelity to the published AI4I 2020 figures:\n" + render_fidelity(fidelity))

    created = datetime.now(UTC)
    params_blob = repr((fingerprint, asdict(config), searches[winner].best_params_)).encode()
    version = f"{created:%Y%m%dT%H%M%SZ}-{hashlib.sha256(params_blob).hexdigest()[:8]}"
    report_dir = reports_root / version
    write_plots(model, X_test, y_test, test_scores, threshold, report_dir, config.seed)
    explanation: dict[str, Any] | None = None
    attribution_plots: list[Path] = []
    if config.explain:
        t0 = time.perf_counter()
        attributions, sample = holdout_attributions(model, X_test, version, config.seed)
        explanation = explanation_entry(attributions)
        attribution_plots = write_attribution_plots(attributions, sample, report_dir)
        progress(
            f"attributions ({explanation['output']}) of {explanation['rows']} held-out readings "
            f"and {len(attribution_plots)} plots ({time.perf_counter() - t0:.1f} s)"
        )
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
        "threshold_objective": (
            f"minimum expected cost at a miss / false-alarm cost ratio of {config.cost_ratio:g}: "
            f"flag when P(failure) >= 1 / (1 + {config.cost_ratio:g})"
        ),
        "cost_ratio": config.cost_ratio,
        "calibration": {
            "method": calibration_method(model),
            "folds": config.calibration_folds,
            "validation": calibration_scores,
            # the calibration check: the validation-optimal threshold and its cost
            "validation_best_threshold": best_threshold,
            "validation_best_cost": best_cost,
        },
        "estimator": winner,
        "candidates": {n: float(s.best_score_) for n, s in searches.items()},
        "serving_cost": {n: serving_cost(s.best_estimator_) for n, s in searches.items()},
        "metrics": metrics,
        "explanation": explanation,
        "fidelity": fidelity,
        "params": {
            "seed": config.seed,
            "cv_folds": config.cv_folds,
            "split": list(config.split),
            "cost_ratio": config.cost_ratio,
            "calibration": list(config.calibration),
            "calibration_folds": config.calibration_folds,
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
    progress(verdict(failures))
    bundle_path = None
    if not failures:
        reference = build_reference(X_train, X_test, test_scores, threshold)
        extra = serving_files(model, X_test, progress)
        bundle_path = write_bundle(models_dir, version, model, metadata, reference, card, extra)
    return TrainResult(
        version,
        metrics,
        bundle_path,
        report_dir,
        time.perf_counter() - started,
        failures,
        metadata,
        attribution_plots,
    )


def serving_files(pipeline: Any, X_check: pd.DataFrame, progress: Progress) -> dict[str, bytes]:
    """The serving form's files, after proving parity with the Pipeline (empty if unsupported)."""
    try:
        spec, files = export_serving(pipeline)
    except UnsupportedPipelineError as exc:
        progress(f"no serving form ({exc}); the service will use the Pipeline")
        return {}
    gap = check_parity(pipeline, ServingForm(spec, files), X_check)
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
