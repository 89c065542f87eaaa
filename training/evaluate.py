"""Held-out evaluation: metrics, plots, the model card, and the quality gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots go to files
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from training import features as F


@dataclass(frozen=True)
class QualityGate:
    """Minimum held-out metrics a model must reach before a bundle is written."""

    min_roc_auc: float = 0.95
    min_pr_auc: float = 0.75
    min_recall: float = 0.5

    def failures(self, metrics: dict[str, Any]) -> list[str]:
        checks = {"roc_auc": self.min_roc_auc, "pr_auc": self.min_pr_auc, "recall": self.min_recall}
        return [
            f"{name} {metrics[name]:.4f} < {minimum}"
            for name, minimum in checks.items()
            if metrics[name] < minimum
        ]


def compute_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Threshold-free and thresholded metrics on one labelled set."""
    predicted = (scores >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y, scores)),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "rows": len(y),
        "positives": int(np.sum(y)),
    }


def write_plots(
    pipeline: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    out_dir: Path,
    seed: int,
) -> list[Path]:
    """PR, ROC, confusion matrix, calibration and permutation-importance plots as PNG."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(y, scores, ax=ax, name="held-out")
    ax.set_title("Precision-recall")
    save(fig, "pr_curve.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    RocCurveDisplay.from_predictions(y, scores, ax=ax, name="held-out")
    ax.set_title("ROC")
    save(fig, "roc_curve.png")

    fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(
        y,
        (scores >= threshold).astype(int),
        ax=ax,
        display_labels=["ok", "failure"],
        colorbar=False,
    )
    ax.set_title(f"Confusion matrix (threshold {threshold:.3f})")
    save(fig, "confusion_matrix.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    frac_pos, mean_pred = calibration_curve(y, scores, n_bins=10, strategy="quantile")
    ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    ax.plot(mean_pred, frac_pos, "o-", label="model")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed failure share")
    ax.set_title("Calibration")
    ax.legend()
    save(fig, "calibration.png")

    importance = permutation_importance(
        pipeline, X, y, scoring="average_precision", n_repeats=5, random_state=seed, n_jobs=1
    )
    order = np.argsort(importance.importances_mean)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh(
        np.asarray(F.FEATURE_NAMES)[order],
        importance.importances_mean[order],
        xerr=importance.importances_std[order],
    )
    ax.set_xlabel("drop in PR-AUC when shuffled")
    ax.set_title("Permutation importance (held-out)")
    save(fig, "feature_importance.png")
    return paths


def model_card(metadata: dict[str, Any]) -> str:
    """A Markdown model card from the bundle metadata."""
    m = metadata["metrics"]["test"]
    cm = m["confusion_matrix"]
    cv = "\n".join(f"| {name} | {score:.4f} |" for name, score in metadata["candidates"].items())
    return f"""# Model card: {metadata["name"]} {metadata["version"]}

Predicts the probability that a milling machine fails during the next process, from one
sensor reading (AI4I 2020 schema `{metadata["schema_hash"][:12]}`).

## Intended use
Flag readings for maintenance review. The decision threshold ({metadata["threshold"]:.4f}) was
chosen on the validation split to {metadata["threshold_objective"]}. Not a safety system:
random failures (RNF) are unpredictable by construction.

## Training data
{metadata["data"]["source"]} — {metadata["data"]["rows"]} rows, sha256
`{metadata["data"]["sha256"][:16]}...`, failure share {metadata["data"]["positive_share"]:.2%}.
Split train/validation/test {metadata["params"]["split"]}
(stratified, seed {metadata["params"]["seed"]}).

## Model
Winner **{metadata["estimator"]}** by cross-validated PR-AUC:

| candidate | CV PR-AUC |
|---|---|
{cv}

Best parameters: `{metadata["params"]["best_params"]}`.

## Held-out test metrics
| metric | value |
|---|---|
| ROC-AUC | {m["roc_auc"]:.4f} |
| PR-AUC | {m["pr_auc"]:.4f} |
| F1 | {m["f1"]:.4f} |
| precision | {m["precision"]:.4f} |
| recall | {m["recall"]:.4f} |
| Brier | {m["brier"]:.4f} |

Confusion matrix: TN {cm["tn"]}, FP {cm["fp"]}, FN {cm["fn"]}, TP {cm["tp"]}.

## Provenance
Created {metadata["created_at"]} from commit `{metadata["git_commit"]}` with Python
{metadata["python_version"]} and scikit-learn {metadata["sklearn_version"]}.
"""
