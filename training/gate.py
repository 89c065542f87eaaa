"""The quality gate: held-out limits a model must meet before a bundle is written.

Light on imports (no scikit-learn, no matplotlib): the CLI reads its defaults at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QualityGate:
    """Held-out limits a model must meet before a bundle is written.

    Ranking (ROC-AUC, PR-AUC), the decision (recall at the chosen threshold) and honesty of the
    probabilities (Brier score, expected calibration error, log loss).
    """

    min_roc_auc: float = 0.95
    min_pr_auc: float = 0.75
    min_recall: float = 0.5
    max_brier: float = 0.03
    max_ece: float = 0.02
    max_log_loss: float = 0.12

    def failures(self, metrics: dict[str, Any]) -> list[str]:
        """Every limit the metrics miss, as readable text (empty: the gate passes)."""
        minimums = {
            "roc_auc": self.min_roc_auc,
            "pr_auc": self.min_pr_auc,
            "recall": self.min_recall,
        }
        maximums = {"brier": self.max_brier, "ece": self.max_ece, "log_loss": self.max_log_loss}
        return [
            f"{name} {metrics[name]:.4f} < {limit}"
            for name, limit in minimums.items()
            if metrics[name] < limit
        ] + [
            f"{name} {metrics[name]:.4f} > {limit}"
            for name, limit in maximums.items()
            if name in metrics and metrics[name] > limit
        ]


def verdict(failures: list[str]) -> str:
    """One line: the quality gate's verdict."""
    if failures:
        return "quality gate FAILED: " + "; ".join(failures)
    return "quality gate passed"
