"""Global attribution reports of a trained model, from explainer.attributions on held-out data.

The bundle's `explanation` metadata (the reference the explainer process compares live
attributions with), a beeswarm of every raw feature and dependence plots for the top ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # headless: plots go to files
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from model import features as F

if TYPE_CHECKING:  # importing explainer (and shap, seconds) waits for the first report
    from explainer.attributions import Attributions

MAX_ROWS = 2000  # a bounded sample of the test split: plots and figures barely move beyond it
TOP_DEPENDENCE = 3
SUMMARY_FILE = "attribution_summary.png"


def dependence_file(feature: str) -> str:
    return f"attribution_dependence_{feature}.png"


def holdout_attributions(
    model: Any, X: pd.DataFrame, version: str, seed: int
) -> tuple[Attributions, pd.DataFrame]:
    """Attributions of (a sample of at most MAX_ROWS of) the held-out readings, and the sample.

    Logistic regression's reference point takes the product-type mix of all of `X`, as the
    bundle's reference profile records it, so Attributor.from_bundle finds the same base value.
    """
    from explainer.attributions import Attributor

    sample = X if len(X) <= MAX_ROWS else X.sample(MAX_ROWS, random_state=seed)
    shares = X[F.PRODUCT_TYPE.name].value_counts(normalize=True)
    mix = [float(shares.get(c, 0.0)) for c in F.PRODUCT_TYPE.categories]
    return Attributor(model, version, mix).explain_frame(sample), sample


def explanation_entry(attributions: Attributions) -> dict[str, Any]:
    """The bundle metadata's `explanation`: unit, base value, mean |attribution| per feature."""
    mean_abs = np.abs(attributions.values).mean(axis=0)
    return {
        "output": attributions.output,
        "base_value": attributions.base_value,
        "mean_abs": {f: float(v) for f, v in zip(attributions.features, mean_abs, strict=True)},
        "rows": len(attributions.values),
    }


def top_features(mean_abs: dict[str, float], count: int = TOP_DEPENDENCE) -> list[str]:
    """The `count` features with the largest mean |attribution| (ties by name)."""
    return sorted(mean_abs, key=lambda f: (-mean_abs[f], f))[:count]


def write_attribution_plots(
    attributions: Attributions, sample: pd.DataFrame, out_dir: Path
) -> list[Path]:
    """attribution_summary.png and attribution_dependence_<feature>.png for the top features."""
    import shap

    out_dir.mkdir(parents=True, exist_ok=True)
    shown = sample[list(F.FEATURE_NAMES)].copy()
    # colour and x axis need numbers: product type as its code (L=0, M=1, H=2)
    shown[F.PRODUCT_TYPE.name] = pd.Categorical(
        shown[F.PRODUCT_TYPE.name], categories=F.PRODUCT_TYPE.categories
    ).codes.astype(float)
    unit = f"attribution to the raw score ({attributions.output})"
    paths: list[Path] = []

    # the beeswarm's vertical jitter is random: a fixed generator makes the plot reproducible
    rng = np.random.default_rng(0)
    shap.summary_plot(attributions.values, shown, show=False, plot_size=(7.0, 4.0), rng=rng)
    figure = plt.gcf()
    figure.axes[0].set_xlabel(unit)
    figure.axes[0].set_title(f"Attributions, held-out readings ({len(shown)})")
    paths.append(_save(figure, out_dir / SUMMARY_FILE))

    for feature in top_features(explanation_entry(attributions)["mean_abs"]):
        figure, ax = plt.subplots(figsize=(5.5, 4.0))
        shap.dependence_plot(
            feature, attributions.values, shown, interaction_index=None, ax=ax, show=False
        )
        if feature == F.PRODUCT_TYPE.name:
            ax.set_xticks(range(len(F.PRODUCT_TYPE.categories)), F.PRODUCT_TYPE.categories)
        ax.set_ylabel(unit)
        ax.set_title(f"Attribution of {feature}")
        paths.append(_save(figure, out_dir / dependence_file(feature)))
    return paths


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
