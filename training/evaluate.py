"""Held-out evaluation: metrics, plots, the model card, and the quality gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots go to files
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from model import features as F
from model.decision import decide
from training.gate import QualityGate, verdict

__all__ = ["QualityGate", "verdict"]  # re-exported: where the gate used to live

# Fixed calibration bin edges: fine where a 3.4 %-positive problem puts its readings (near 0)
# and where decisions are made, instead of quantile bins that all sit near zero.
CALIBRATION_EDGES: tuple[float, ...] = (
    0.0,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.35,
    0.5,
    0.65,
    0.8,
    0.9,
    1.0,
)
# Log-spaced edges for the reliability curve on log axes (the first bin also takes exact zeros)
LOG_EDGES: tuple[float, ...] = tuple(float(x) for x in np.logspace(-4, 0, 13))
ECE_BINS = 10  # equal-width bins over [0, 1]: the usual ECE definition


def expected_calibration_error(y: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: sum over equal-width bins of (share of readings) x |mean predicted - observed|."""
    index = np.minimum((np.asarray(scores) * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(index):
        members = index == b
        total += members.mean() * abs(float(scores[members].mean()) - float(y[members].mean()))
    return float(total)


def binned_reliability(
    y: np.ndarray, scores: np.ndarray, edges: tuple[float, ...]
) -> list[dict[str, float]]:
    """Per bin (fixed edges, right-closed, the first also takes its left edge): count,
    positives, mean predicted probability and observed failure share."""
    index = np.clip(np.searchsorted(np.asarray(edges), scores, side="left") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        members = index == b
        count = int(members.sum())
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "positives": int(y[members].sum()),
                "mean_predicted": float(scores[members].mean()) if count else float("nan"),
                "observed": float(y[members].mean()) if count else float("nan"),
            }
        )
    return rows


def compute_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Threshold-free, thresholded and calibration metrics on one labelled set."""
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=float)
    predicted = decide(scores, threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y, scores)),
        "log_loss": float(log_loss(y, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "ece": expected_calibration_error(y, scores),
        "mean_predicted": float(scores.mean()),
        "positive_share": float(y.mean()),
        "threshold": float(threshold),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "rows": len(y),
        "positives": int(np.sum(y)),
    }


def expected_cost(metrics: dict[str, Any], cost_ratio: float) -> float:
    """Cost per reading in false-alarm units: (cost_ratio x missed + false alarms) / rows."""
    cm = metrics["confusion_matrix"]
    return float((cost_ratio * cm["fn"] + cm["fp"]) / max(metrics["rows"], 1))


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
        decide(scores, threshold).astype(int),
        ax=ax,
        display_labels=["ok", "failure"],
        colorbar=False,
    )
    ax.set_title(f"Confusion matrix (threshold {threshold:.3f})")
    save(fig, "confusion_matrix.png")

    fig = calibration_figure(y, scores, threshold)
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


def calibration_figure(y: np.ndarray, scores: np.ndarray, threshold: float) -> Any:
    """Reliability on fixed bins (with counts) and on log-spaced bins with log axes."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    fixed = [b for b in binned_reliability(y, scores, CALIBRATION_EDGES) if b["count"]]
    left.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    left.plot(
        [b["mean_predicted"] for b in fixed], [b["observed"] for b in fixed], "o-", label="model"
    )
    for b in fixed:
        left.annotate(
            f"{b['positives']}/{b['count']}",
            (b["mean_predicted"], b["observed"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=7,
        )
    left.axvline(threshold, color="tab:red", lw=0.8, ls="--", label=f"threshold {threshold:.3f}")
    left.set_xlabel("mean predicted probability (fixed bins)")
    left.set_ylabel("observed failure share")
    left.set_title("Calibration (failures/readings per bin)")
    left.legend(fontsize=7, loc="upper left")
    logged = [b for b in binned_reliability(y, scores, (0.0, *LOG_EDGES[1:])) if b["count"]]
    floor = LOG_EDGES[0] / 2  # where an empty-of-failures bin is drawn on the log axis
    right.plot([floor, 1], [floor, 1], "k:")
    right.plot(
        [max(b["mean_predicted"], floor) for b in logged],
        [max(b["observed"], floor) for b in logged],
        "o-",
    )
    for b in logged:
        right.annotate(
            str(b["count"]),
            (max(b["mean_predicted"], floor), max(b["observed"], floor)),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    right.axvline(threshold, color="tab:red", lw=0.8, ls="--")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("mean predicted probability (log bins)")
    right.set_ylabel("observed failure share (0 drawn at the floor)")
    right.set_title("Reliability, log axes (readings per bin)")
    return fig


def attribution_section(metadata: dict[str, Any]) -> str:
    """The model card's attribution summary (empty for metadata written before it existed)."""
    from training.explain import SUMMARY_FILE, dependence_file, top_features

    explanation = metadata.get("explanation")
    if not explanation:
        return ""
    mean_abs = explanation["mean_abs"]
    rows = "\n".join(f"| {f} | {v:.4f} |" for f, v in sorted(mean_abs.items(), key=lambda i: -i[1]))
    links = ", ".join(f"[{f}]({dependence_file(f)})" for f in top_features(mean_abs))
    return f"""
## Attributions (held-out)
Exact SHAP attributions of the model's raw score ({explanation["output"]}, which the
calibration maps monotonically to the probability) on {explanation["rows"]} held-out readings,
per raw reading: engineered features are split equally among the readings they are computed
from, the one-hot columns go to product_type (docs/training.md, Explanations). For every
reading, base value {explanation["base_value"]:.4f} + its attributions = its raw score. Where
permutation importance (feature_importance.png) says how much PR-AUC a reading carries, these
say which way, and how far, each reading moves each answer.

| feature | mean abs attribution |
|---|---|
{rows}

Plots in the run's reports folder: [{SUMMARY_FILE}]({SUMMARY_FILE}) (every reading, every
feature); dependence on the top features: {links}.
"""


def model_card(metadata: dict[str, Any]) -> str:
    """A Markdown model card from the bundle metadata."""
    from training.fidelity import render_fidelity

    m = metadata["metrics"]["test"]
    cm = m["confusion_matrix"]
    cv = "\n".join(f"| {name} | {score:.4f} |" for name, score in metadata["candidates"].items())
    calibration = metadata.get("calibration", {})
    tried = ", ".join(
        f"{name} {s['log_loss']:.4f}" for name, s in calibration.get("validation", {}).items()
    )
    fidelity = render_fidelity(metadata["fidelity"]) if "fidelity" in metadata else "n/a"
    objective = metadata["threshold_objective"]
    return f"""# Model card: {metadata["name"]} {metadata["version"]}

Predicts the probability that a milling machine fails during the next process, from one
sensor reading (AI4I 2020 schema `{metadata["schema_hash"][:12]}`).

## Intended use
Flag readings for maintenance review. Not a safety system: random failures (RNF) are
unpredictable by construction.

## How to read an answer
`failure_probability` is calibrated: of many readings answered 0.2, about one in five fails.
`failure` is the decision, `failure_probability >= threshold`, and every answer carries the
threshold it used ({metadata["threshold"]:.4f}), chosen by {objective}
(a missed failure costs {metadata.get("cost_ratio", "n/a")} false alarms). A flagged reading
with a low probability is not a contradiction: at this cost ratio a
{metadata["threshold"]:.0%} risk is worth an inspection.

## Training data
{metadata["data"]["source"]} — {metadata["data"]["rows"]} rows, sha256
`{metadata["data"]["sha256"][:16]}...`, failure share {metadata["data"]["positive_share"]:.2%}.
Split train/validation/test {metadata["params"]["split"]}
(stratified, seed {metadata["params"]["seed"]}).

### Fidelity to the published AI4I 2020 figures
KS: largest CDF gap at the published minimum, quartiles and maximum; PSI over the published
quartile bins (sources: docs/training.md).

{fidelity}

## Model
Winner **{metadata["estimator"]}** by cross-validated PR-AUC:

| candidate | CV PR-AUC |
|---|---|
{cv}

Best parameters: `{metadata["params"]["best_params"]}`.

Probability calibration: **{calibration.get("method", "none")}**, cross-fitted on
{calibration.get("folds", "n/a")} folds of the training split (each calibrator learns on
predictions for readings the model did not train on), chosen by validation log loss
({tried or "n/a"}).

## Held-out test metrics
| metric | value |
|---|---|
| ROC-AUC | {m["roc_auc"]:.4f} |
| PR-AUC | {m["pr_auc"]:.4f} |
| F1 | {m["f1"]:.4f} |
| precision | {m["precision"]:.4f} |
| recall | {m["recall"]:.4f} |
| Brier | {m["brier"]:.4f} |
| log loss | {m["log_loss"]:.4f} |
| ECE (10 equal-width bins) | {m["ece"]:.4f} |
| mean predicted / failure share | {m["mean_predicted"]:.4f} / {m["positive_share"]:.4f} |
| expected cost per reading (false-alarm units) | {m.get("expected_cost", float("nan")):.4f} |

Confusion matrix at the threshold: TN {cm["tn"]}, FP {cm["fp"]}, FN {cm["fn"]}, TP {cm["tp"]}.

Quality gate: `{metadata["params"]["gate"]}`.
{attribution_section(metadata)}
## Provenance
Created {metadata["created_at"]} from commit `{metadata["git_commit"]}` with Python
{metadata["python_version"]} and scikit-learn {metadata["sklearn_version"]}.
"""
