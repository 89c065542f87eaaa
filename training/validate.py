"""Data validation with a readable report: every finding names the rule, the column and the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from model import features as F

# The real AI4I file has 9 failures without a mode and 18 RNF rows without a failure (0.27 %).
MAX_LABEL_EXCEPTION_SHARE = 0.005
MAX_FEATURE_NULL_SHARE = 0.01  # the Pipeline imputes; more than this is a broken extract
MIN_POSITIVE_ROWS = 20
POSITIVE_SHARE_RANGE = (0.005, 0.5)
MAX_ROWS_LISTED = 10
UDI_LABEL = "UDI"  # rows named by the file's identifier column
POSITION_LABEL = "rows at 0-based positions"  # when the data has no usable UDI


class DataValidationError(ValueError):
    """The dataset failed validation; carries the full report."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.render())
        self.report = report


@dataclass(frozen=True)
class Finding:
    """One rule outcome: an error blocks training, a warning is reported."""

    level: Literal["error", "warning"]
    rule: str
    column: str
    message: str
    rows: tuple[int, ...] = ()
    count: int = 0
    # how `rows` name the rows: the file's UDI, or positions counted from 0 (no UDI column)
    row_label: str = POSITION_LABEL

    def render(self) -> str:
        where = ""
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:MAX_ROWS_LISTED])
            more = (
                f" and {self.count - MAX_ROWS_LISTED} more" if self.count > MAX_ROWS_LISTED else ""
            )
            where = f" ({self.row_label} {shown}{more})"
        return f"{self.level.upper():7} [{self.rule}] column '{self.column}': {self.message}{where}"


@dataclass
class ValidationReport:
    """All findings for one dataset, plus the summary figures worth printing."""

    rows: int
    findings: list[Finding] = field(default_factory=list)
    positive_share: float | None = None
    # the UDI of each row (by position) when the data has a complete integer UDI column
    udi: np.ndarray | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(
        self,
        level: Literal["error", "warning"],
        rule: str,
        column: str,
        message: str,
        mask: pd.Series | np.ndarray | None = None,
    ) -> None:
        rows: tuple[int, ...] = ()
        count = 0
        label = POSITION_LABEL
        if mask is not None:
            index = np.flatnonzero(np.asarray(mask, dtype=bool))
            count = len(index)
            if self.udi is not None and column != "udi":
                index, label = self.udi[index], UDI_LABEL
            rows = tuple(int(i) for i in index[:MAX_ROWS_LISTED])
        self.findings.append(Finding(level, rule, column, message, rows, count, label))

    def render(self) -> str:
        status = "PASSED" if self.ok else "FAILED"
        share = (
            f", positive share {self.positive_share:.2%}" if self.positive_share is not None else ""
        )
        lines = [
            f"data validation {status}: {self.rows} rows{share}, "
            f"{len(self.errors)} errors, {len(self.findings) - len(self.errors)} warnings"
        ]
        lines += ["  " + f.render() for f in self.findings]
        return "\n".join(lines)


def validate(frame: pd.DataFrame, require_labels: bool = True) -> ValidationReport:
    """Check schema, types, ranges, nulls, duplicates, label consistency and class balance."""
    report = ValidationReport(rows=len(frame), udi=_udi(frame))
    required = [*F.FEATURE_NAMES, *([F.TARGET] if require_labels else [])]
    missing = [c for c in required if c not in frame.columns]
    for column in missing:
        report.add("error", "schema", column, "required column is missing")
    if missing:
        return report
    if frame.empty:
        report.add("error", "schema", "*", "the dataset has no rows")
        return report
    _check_product_type(frame, report)
    for feature in F.NUMERIC_FEATURES:
        _check_numeric(frame, feature, report)
    if "udi" in frame.columns:
        dup = frame["udi"].duplicated(keep="first")
        if dup.any():
            report.add("error", "duplicates", "udi", "identifier appears more than once", dup)
    dup_rows = frame.duplicated(keep="first")
    if dup_rows.any():
        report.add("warning", "duplicates", "*", "fully duplicated rows", dup_rows)
    if require_labels:
        _check_labels(frame, report)
    return report


def _udi(frame: pd.DataFrame) -> np.ndarray | None:
    """The UDI per row when every row has a unique integer one (else rows go by position)."""
    if "udi" not in frame.columns:
        return None
    udi = pd.to_numeric(frame["udi"], errors="coerce")
    if udi.isna().any() or not (udi == udi.round()).all() or udi.duplicated().any():
        return None
    return udi.to_numpy(dtype=np.int64)


def _check_product_type(frame: pd.DataFrame, report: ValidationReport) -> None:
    column = F.PRODUCT_TYPE.name
    values = frame[column]
    null = values.isna()
    bad = ~null & ~values.astype(str).isin(F.PRODUCT_TYPE.categories)
    if bad.any():
        seen = sorted(set(values[bad].astype(str)))[:5]
        report.add(
            "error",
            "type",
            column,
            f"values {seen} are not one of {list(F.PRODUCT_TYPE.categories)}",
            bad,
        )
    _check_nulls(column, null, report)


def _check_numeric(
    frame: pd.DataFrame, feature: F.NumericFeature, report: ValidationReport
) -> None:
    raw = frame[feature.name]
    numbers = pd.to_numeric(raw, errors="coerce")
    not_numeric = numbers.isna() & raw.notna()
    if not_numeric.any():
        report.add("error", "type", feature.name, "values are not numbers", not_numeric)
    infinite = np.isinf(numbers.fillna(0.0).to_numpy(dtype=float))
    if infinite.any():
        report.add("error", "range", feature.name, "values are infinite", infinite)
    outside = (
        numbers.notna() & ~infinite & ((numbers < feature.minimum) | (numbers > feature.maximum))
    )
    if outside.any():
        report.add(
            "error",
            "range",
            feature.name,
            f"values outside the physical bounds [{feature.minimum}, {feature.maximum}] "
            f"{feature.unit}",
            outside,
        )
    _check_nulls(feature.name, raw.isna(), report)


def _check_nulls(column: str, null: pd.Series, report: ValidationReport) -> None:
    if not null.any():
        return
    share = float(null.mean())
    level: Literal["error", "warning"] = "error" if share > MAX_FEATURE_NULL_SHARE else "warning"
    report.add(
        level,
        "nulls",
        column,
        f"{share:.2%} missing (the Pipeline imputes up to {MAX_FEATURE_NULL_SHARE:.0%})",
        null,
    )


def _check_labels(frame: pd.DataFrame, report: ValidationReport) -> None:
    label_columns = [F.TARGET, *(m for m in F.FAILURE_MODES if m in frame.columns)]
    for column in label_columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            report.add("error", "labels", column, "labels must be 0 or 1 (no nulls)", bad)
            return
    target = frame[F.TARGET].astype(int)
    modes = [m for m in F.FAILURE_MODES if m in frame.columns]
    if modes:
        any_mode = frame[modes].astype(int).any(axis=1)
        inconsistent = (target == 1) != any_mode
        share = float(inconsistent.mean())
        if inconsistent.any():
            level: Literal["error", "warning"] = (
                "error" if share > MAX_LABEL_EXCEPTION_SHARE else "warning"
            )
            report.add(
                level,
                "label-consistency",
                F.TARGET,
                f"{share:.2%} of rows disagree with their failure modes (tolerated up to "
                f"{MAX_LABEL_EXCEPTION_SHARE:.1%}, the real dataset's known exceptions)",
                inconsistent,
            )
    positives = int(target.sum())
    report.positive_share = positives / len(frame)
    low, high = POSITIVE_SHARE_RANGE
    if positives < MIN_POSITIVE_ROWS or not low <= report.positive_share <= high:
        report.add(
            "error",
            "class-balance",
            F.TARGET,
            f"{positives} failures ({report.positive_share:.2%}); training needs at least "
            f"{MIN_POSITIVE_ROWS} and a share in [{low:.1%}, {high:.0%}]",
        )
