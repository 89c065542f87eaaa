"""Offline Evidently reports: data drift of sampled prediction events against a bundle's
reference, and classification quality on labelled readings scored with the bundle.

Not part of serving: Evidently is imported inside the functions that need it, from the `report`
dependency group, which the serving image does not install. The reference is either a training
data file (raw rows) or, by default, the bundle's reference.json. That file holds decile bins and
proportions, not rows, so the default report compares *binned* readings: every numeric feature
and the score become the bin they fall in, and the reference rows are exactly the stored
proportions times the stored row count. Nothing is drawn or invented inside a bin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import features as F
from model.decision import decide

SCORE = "failure_probability"
PREDICTION = "failure"
# Binned comparisons use the statistic and threshold of the FaultlineInputDrift alert
# (prometheus/observability.yml psi_significant), so the report explains what fired.
PSI_SIGNIFICANT = 0.25
INSTALL_HINT = (
    "Evidently is not installed: reports are an offline tool, not part of the serving image. "
    "Install it with `uv sync --group report` (in a checkout of this repository)."
)


class ReportUnavailableError(RuntimeError):
    """Evidently cannot be imported; the message says how to install it."""


@dataclass(frozen=True)
class ReportResult:
    """What a report run wrote and found."""

    html: Path
    json: Path
    drifted: list[str]  # drift report: columns whose drift test failed; quality: empty
    rows: int


def _evidently() -> Any:
    """Import Evidently (0.7 API) or say how to install it."""
    import pandas.core.dtypes.common as common

    if not hasattr(common, "infer_dtype_from_object"):
        # Evidently 0.7.23 imports this helper, removed in pandas 3, at import time (only its
        # legacy column-type test calls it); restore it so the import works under pandas 3.
        common.infer_dtype_from_object = lambda dtype: pd.api.types.pandas_dtype(dtype).type  # type: ignore[attr-defined]
    try:
        import evidently
    except ImportError as exc:
        raise ReportUnavailableError(INSTALL_HINT) from exc
    return evidently


def read_events(path: Path) -> pd.DataFrame:
    """`prediction` events of a JSON-lines log -> one row per reading, with its score."""
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        start = line.find("{")  # tolerate prefixes such as `kubectl logs --timestamps`
        if start < 0:
            continue
        try:
            event = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if not isinstance(event, dict) or event.get("event") != "prediction":
            continue
        for reading, output in zip(event.get("inputs", []), event.get("outputs", []), strict=False):
            rows.append({**{n: reading.get(n) for n in F.FEATURE_NAMES}, SCORE: output.get(SCORE)})
    if not rows:
        raise ValueError(
            f"no `prediction` events in {path}: the service logs them only for a sampled share "
            "of requests (FAULTLINE_PREDICTION_LOG_SAMPLE_RATE > 0)"
        )
    return _typed(pd.DataFrame(rows))


def read_readings(path: Path, required: tuple[str, ...] = F.FEATURE_NAMES) -> pd.DataFrame:
    """A CSV of readings with our column names or the UCI file's (training data files)."""
    frame = pd.read_csv(
        path, dtype={F.PRODUCT_TYPE.name: object, F.PRODUCT_TYPE.source_column: object}
    )
    frame = frame.rename(columns=F.UCI_TO_NAME)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}")
    return _typed(frame[list(required)])


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame[F.PRODUCT_TYPE.name] = frame[F.PRODUCT_TYPE.name].astype(str)
    for name in (*F.NUMERIC_NAMES, SCORE):
        if name in frame.columns:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def score(frame: pd.DataFrame, bundle_dir: Path) -> tuple[np.ndarray, float, str]:
    """Failure probabilities of readings from the bundle, with its threshold and version."""
    from prometheus_client import CollectorRegistry

    from service.metrics import ServiceMetrics
    from service.predictor import Predictor, to_arrays

    predictor = Predictor.load(bundle_dir, ServiceMetrics(CollectorRegistry()))
    records: list[dict[str, Any]] = frame[list(F.FEATURE_NAMES)].to_dict("records")  # type: ignore[assignment]
    probabilities = predictor.predict_proba(*to_arrays(records))
    return np.asarray(probabilities, dtype=float), predictor.threshold, predictor.version


def _bin_labels(edges: list[float]) -> list[str]:
    """Sortable labels of the bins (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    bounds = [f"{e:.6g}" for e in edges]
    inner = [f"({lo}, {hi}]" for lo, hi in pairwise(bounds)]
    names = [f"<= {bounds[0]}", *inner, f"> {bounds[-1]}"]
    return [f"{i:02d} {name}" for i, name in enumerate(names)]


def _to_bins(values: pd.Series, edges: list[float]) -> pd.Series:
    """Values -> their bin's label, binned exactly as training/reference.py profiles them."""
    labels = np.asarray(_bin_labels(edges), dtype=object)
    index = np.searchsorted(np.asarray(edges), values.to_numpy(float), side="left")
    return pd.Series(labels[index], index=values.index, name=values.name).where(values.notna())


def _bins(reference: dict[str, Any]) -> dict[str, list[float]]:
    """Column -> bin edges: the features' deciles and the score buckets of reference.json."""
    edges = {name: reference["numeric"][name]["edges"] for name in F.NUMERIC_NAMES}
    edges[SCORE] = reference["score"]["bucket_upper_bounds"][:-1]
    return edges


def binned_reference(reference: dict[str, Any]) -> pd.DataFrame:
    """reference.json -> rows of bin labels in exactly its proportions (no values invented)."""
    rows = int(reference["rows"])
    columns: dict[str, list[str]] = {}
    profiles = {
        **{
            n: (_bin_labels(e), reference["numeric"][n]["proportions"])
            for n, e in _bins(reference).items()
            if n != SCORE
        },
        SCORE: (_bin_labels(_bins(reference)[SCORE]), reference["score"]["proportions"]),
        F.PRODUCT_TYPE.name: (
            reference["categorical"][F.PRODUCT_TYPE.name]["categories"],
            reference["categorical"][F.PRODUCT_TYPE.name]["proportions"],
        ),
    }
    for name, (labels, proportions) in profiles.items():
        counts = np.round(np.asarray(proportions, dtype=float) * rows).astype(int)
        counts[np.argmax(counts)] += rows - counts.sum()  # rounding: keep every column `rows` long
        columns[name] = [label for label, n in zip(labels, counts, strict=True) for _ in range(n)]
    return pd.DataFrame(columns)[[*F.FEATURE_NAMES, SCORE]]


def drift_report(
    events: Path, bundle_dir: Path, out: Path, reference_csv: Path | None = None
) -> ReportResult:
    """Data-drift report of logged readings and scores vs the bundle's reference."""
    from model.bundle import load_bundle, resolve_bundle

    evidently = _evidently()
    from evidently.presets import DataDriftPreset

    current = read_events(events)
    if reference_csv is None:
        profile = load_bundle(resolve_bundle(bundle_dir), with_pipeline=False).reference
        reference = binned_reference(profile)
        for name, edges in _bins(profile).items():
            current[name] = _to_bins(current[name], edges)
        numeric: list[str] = []
        preset = DataDriftPreset(method="psi", threshold=PSI_SIGNIFICANT)
    else:
        reference = read_readings(reference_csv)
        reference[SCORE] = score(reference, bundle_dir)[0]
        numeric = [*F.NUMERIC_NAMES, SCORE]
        preset = DataDriftPreset()  # Evidently's defaults for raw values (K-S, Wasserstein)
    categorical = [c for c in (*F.FEATURE_NAMES, SCORE) if c not in numeric]
    definition = evidently.DataDefinition(
        numerical_columns=numeric, categorical_columns=categorical
    )
    report = evidently.Report([preset], include_tests=True)
    snapshot = report.run(
        evidently.Dataset.from_pandas(current, data_definition=definition),
        evidently.Dataset.from_pandas(reference, data_definition=definition),
    )
    return _save(snapshot, out, "drift", drifted_columns(snapshot.dict()), len(current))


def drifted_columns(result: dict[str, Any]) -> list[str]:
    """Columns whose Evidently drift test failed, from a snapshot's dict()."""
    return sorted(
        test["metric_config"]["params"]["column"]
        for test in result.get("tests", [])
        if test.get("status") == "FAIL"
        and "column" in test.get("metric_config", {}).get("params", {})
    )


def quality_report(labelled: Path, bundle_dir: Path, out: Path) -> ReportResult:
    """Classification-quality report of labelled readings scored with the bundle."""
    evidently = _evidently()
    from evidently.presets import ClassificationPreset

    frame = read_readings(labelled, (*F.FEATURE_NAMES, F.TARGET))
    frame[F.TARGET] = frame[F.TARGET].astype(int)
    probabilities, threshold, _version = score(frame, bundle_dir)
    frame[SCORE] = probabilities
    frame[PREDICTION] = decide(probabilities, threshold).astype(int)  # the service's rule
    definition = evidently.DataDefinition(
        numerical_columns=list(F.NUMERIC_NAMES),
        categorical_columns=[F.PRODUCT_TYPE.name],
        classification=[
            evidently.BinaryClassification(
                target=F.TARGET, prediction_labels=PREDICTION, prediction_probas=SCORE, pos_label=1
            )
        ],
    )
    report = evidently.Report([ClassificationPreset(probas_threshold=threshold)])
    snapshot = report.run(evidently.Dataset.from_pandas(frame, data_definition=definition), None)
    return _save(snapshot, out, "quality", [], len(frame))


def _save(snapshot: Any, out: Path, name: str, drifted: list[str], rows: int) -> ReportResult:
    out.mkdir(parents=True, exist_ok=True)
    html, result = out / f"{name}.html", out / f"{name}.json"
    snapshot.save_html(str(html))
    snapshot.save_json(str(result))
    return ReportResult(html, result, drifted, rows)
