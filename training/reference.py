"""The monitoring reference profile stored in each bundle.

Numeric features: decile bin edges learned on the training split, and the proportion of the
held-out split in each bin. Product type: proportions per category. Scores: proportions of
held-out predicted probabilities in PROBABILITY_BUCKETS. The service compares a sliding window
of live inputs and scores with these (PSI); Prometheus compares its histograms with them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model import features as F
from model.decision import PROBABILITY_BUCKETS, decide

QUANTILES = np.linspace(0.1, 0.9, 9)


def bin_proportions(values: np.ndarray, edges: list[float]) -> list[float]:
    """Share of values per bin; bins are (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    index = np.searchsorted(np.asarray(edges), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return (counts / max(len(values), 1)).tolist()


def build_reference(
    train: pd.DataFrame, holdout: pd.DataFrame, holdout_scores: np.ndarray, threshold: float
) -> dict[str, Any]:
    """The profile: per-feature bins and proportions, and the held-out score distribution."""
    numeric: dict[str, Any] = {}
    for name in F.NUMERIC_NAMES:
        edges = np.unique(np.nanquantile(train[name].to_numpy(float), QUANTILES)).tolist()
        numeric[name] = {
            "edges": edges,
            "proportions": bin_proportions(holdout[name].to_numpy(float), edges),
        }
    type_share = holdout[F.PRODUCT_TYPE.name].value_counts(normalize=True)
    categorical = {
        F.PRODUCT_TYPE.name: {
            "categories": list(F.PRODUCT_TYPE.categories),
            "proportions": [float(type_share.get(c, 0.0)) for c in F.PRODUCT_TYPE.categories],
        }
    }
    upper = list(PROBABILITY_BUCKETS)
    return {
        "numeric": numeric,
        "categorical": categorical,
        "score": {
            "bucket_upper_bounds": upper,
            "proportions": bin_proportions(holdout_scores, upper[:-1]),
            "quantiles": {
                str(q): float(np.quantile(holdout_scores, q)) for q in (0.5, 0.9, 0.95, 0.99)
            },
            "positive_rate": float(np.mean(decide(holdout_scores, threshold))),
            "mean": float(np.mean(holdout_scores)),
        },
        "rows": len(holdout),
    }
