"""How close a dataset is to the published AI4I 2020 figures (the fidelity report).

The real file stays outside the project, so the comparison is with what is published about it:
the descriptive statistics of each column (count, mean, sd, min, quartiles, max), the
speed-torque correlation, and the failure counts (sources in docs/training.md). Per feature:

- KS: the largest gap between the dataset's CDF and the published one where the published CDF
  is known exactly (at the minimum, the three quartiles and the maximum): a lower bound of the
  Kolmogorov-Smirnov statistic against the real column;
- PSI over the four published quartile bins (each holds 25 % of the real rows), plus the two
  bins outside the published range;
- mean and sd next to the published ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from model import features as F

PSI_FLOOR = 1e-4  # a share this small stands in for an empty bin (PSI takes logarithms)


@dataclass(frozen=True)
class Published:
    """Published descriptive statistics of one column of the real file (10,000 rows)."""

    mean: float
    sd: float
    quantiles: tuple[float, float, float, float, float]  # min, 25 %, 50 %, 75 %, max


# df.describe() of ai4i2020.csv (UCI id 601), as published with the dataset and reproduced in
# many analyses of it. Power and temperature difference are derived columns (same file).
PUBLISHED: dict[str, Published] = {
    F.AIR_TEMPERATURE.name: Published(300.00493, 2.000259, (295.3, 298.3, 300.1, 301.5, 304.5)),
    F.PROCESS_TEMPERATURE.name: Published(310.00556, 1.483734, (305.7, 308.8, 310.1, 311.1, 313.8)),
    F.ROTATIONAL_SPEED.name: Published(1538.7761, 179.284096, (1168, 1423, 1503, 1612, 2886)),
    F.TORQUE.name: Published(39.98691, 9.968934, (3.8, 33.2, 40.1, 46.8, 76.6)),
    F.TOOL_WEAR.name: Published(107.951, 63.654147, (0, 53, 108, 162, 253)),
}
PUBLISHED_POWER_W = {"mean": 6279.74, "sd": 1067.42, "min": 1148.4, "max": 10469.9}
PUBLISHED_SPEED_TORQUE_CORR = -0.875
# implied by the three published sds: (sd_air² + sd_process² - sd_diff²) / (2 sd_air sd_process)
PUBLISHED_AIR_PROCESS_CORR = 0.876
PUBLISHED_ROWS = 10_000
PUBLISHED_COUNTS = {"machine_failure": 339, "TWF": 46, "HDF": 115, "PWF": 95, "OSF": 98, "RNF": 19}
QUARTILE_SHARES = (0.0, 0.25, 0.25, 0.25, 0.25, 0.0)  # below min, four quartile bins, above max


def _cdf_at(values: np.ndarray, point: float) -> float:
    """Mid-CDF at a point (half of the ties count): fair for values on a 0.1 or 1 grid."""
    below = float(np.mean(values < point))
    return below + 0.5 * float(np.mean(values == point))


def ks_at_published_quantiles(values: np.ndarray, published: Published) -> float:
    """Largest |CDF gap| at the published minimum, quartiles and maximum."""
    probabilities = (0.0, 0.25, 0.5, 0.75, 1.0)
    return max(
        abs(_cdf_at(values, q) - p) for q, p in zip(published.quantiles, probabilities, strict=True)
    )


def psi_over_quartiles(values: np.ndarray, published: Published) -> float:
    """Population stability index of the dataset against the published quartile bins."""
    edges = np.asarray(published.quantiles, dtype=float)
    index = np.searchsorted(edges, values, side="right")
    index = np.where(values == edges[-1], len(edges) - 1, index)  # the maximum is inside
    shares = np.bincount(index, minlength=len(edges) + 1) / max(len(values), 1)
    expected = np.maximum(np.asarray(QUARTILE_SHARES), PSI_FLOOR)
    actual = np.maximum(shares, PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def fidelity_report(frame: pd.DataFrame) -> dict[str, Any]:
    """Per-feature KS/PSI and moments, correlations and failure counts vs the published file."""
    features: dict[str, Any] = {}
    for name, published in PUBLISHED.items():
        values = frame[name].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        features[name] = {
            "mean": float(values.mean()),
            "published_mean": published.mean,
            "sd": float(values.std(ddof=1)),
            "published_sd": published.sd,
            "ks": ks_at_published_quantiles(values, published),
            "psi": psi_over_quartiles(values, published),
        }
    speed = frame[F.ROTATIONAL_SPEED.name].to_numpy(dtype=float)
    torque = frame[F.TORQUE.name].to_numpy(dtype=float)
    air = frame[F.AIR_TEMPERATURE.name].to_numpy(dtype=float)
    process = frame[F.PROCESS_TEMPERATURE.name].to_numpy(dtype=float)
    power = torque * speed * F.RPM_TO_RAD_PER_S
    scale = PUBLISHED_ROWS / max(len(frame), 1)
    counts = {
        c: round(float(frame[c].sum()) * scale, 1) for c in PUBLISHED_COUNTS if c in frame.columns
    }
    return {
        "features": features,
        "speed_torque_corr": float(np.corrcoef(speed, torque)[0, 1]),
        "published_speed_torque_corr": PUBLISHED_SPEED_TORQUE_CORR,
        "air_process_corr": float(np.corrcoef(air, process)[0, 1]),
        "published_air_process_corr": PUBLISHED_AIR_PROCESS_CORR,
        "power_mean_w": float(power.mean()),
        "power_sd_w": float(power.std(ddof=1)),
        "published_power_w": PUBLISHED_POWER_W,
        "counts_per_10k": counts,
        "published_counts": PUBLISHED_COUNTS,
        "rows": len(frame),
    }


def render_fidelity(report: dict[str, Any]) -> str:
    """The report as a Markdown table (printed by `train` and written into the model card)."""
    lines = [
        "| feature | mean (published) | sd (published) | KS at quartiles | PSI |",
        "|---|---|---|---|---|",
    ]
    for name, f in report["features"].items():
        lines.append(
            f"| {name} | {f['mean']:.2f} ({f['published_mean']:.2f}) | {f['sd']:.2f} "
            f"({f['published_sd']:.2f}) | {f['ks']:.3f} | {f['psi']:.3f} |"
        )
    power = report["published_power_w"]
    lines += [
        "",
        f"speed-torque correlation {report['speed_torque_corr']:.3f} "
        f"(published {report['published_speed_torque_corr']}); air-process correlation "
        f"{report['air_process_corr']:.3f} ({report['published_air_process_corr']}); power "
        f"{report['power_mean_w']:.0f} ± {report['power_sd_w']:.0f} W "
        f"({power['mean']:.0f} ± {power['sd']:.0f} W)",
        "",
        "| per 10,000 rows | " + " | ".join(report["published_counts"]) + " |",
        "|---|" + "---|" * len(report["published_counts"]),
        "| this data | "
        + " | ".join(f"{report['counts_per_10k'].get(c, 0):g}" for c in report["published_counts"])
        + " |",
        "| published | " + " | ".join(str(v) for v in report["published_counts"].values()) + " |",
    ]
    return "\n".join(lines)
