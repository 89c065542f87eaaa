"""Each class of bad data is caught with a message naming the rule, the column and the rows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from training import data as D
from training import features as F
from training.validate import validate

TORQUE = F.TORQUE.name


@pytest.fixture
def frame() -> pd.DataFrame:
    return D.generate(3000, 2)


def test_clean_data_passes(frame: pd.DataFrame) -> None:
    report = validate(frame)
    assert report.ok, report.render()
    assert "PASSED" in report.render()


def _set(column: str, rows: list[int], value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def apply(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if not isinstance(value, float | int):
            frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value
        return frame

    return apply


CASES = {
    "missing column": (lambda f: f.drop(columns=[TORQUE]), "schema", TORQUE, None),
    "wrong type": (_set(TORQUE, [4, 9], "forty"), "type", TORQUE, "rows 4, 9"),
    "unknown category": (
        _set(F.PRODUCT_TYPE.name, [7], "X"),
        "type",
        F.PRODUCT_TYPE.name,
        "rows 7",
    ),
    "out of range": (_set(TORQUE, [3], 999.0), "range", TORQUE, "rows 3"),
    "infinite": (_set(TORQUE, [5], np.inf), "range", TORQUE, "rows 5"),
    "too many nulls": (_set(TORQUE, list(range(100)), np.nan), "nulls", TORQUE, "rows 0, 1"),
    "duplicate id": (_set("udi", [10], 1), "duplicates", "udi", "rows 10"),
    "non-binary label": (_set(F.TARGET, [2], 3), "labels", F.TARGET, "rows 2"),
    "inconsistent labels": (
        _set(F.TARGET, list(range(0, 200)), 1),
        "label-consistency",
        F.TARGET,
        None,
    ),
    "class balance": (
        lambda f: f.assign(**{F.TARGET: 0, **{m: 0 for m in F.FAILURE_MODES}}),
        "class-balance",
        F.TARGET,
        None,
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_data_is_caught_and_named(frame: pd.DataFrame, case: str) -> None:
    corrupt, rule, column, rows = CASES[case]
    report = validate(corrupt(frame))
    assert not report.ok
    text = report.render()
    assert f"[{rule}] column '{column}'" in text, text
    if rows:
        assert rows in text, text


def test_known_label_exceptions_are_only_warnings(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    healthy = frame.index[frame[F.TARGET] == 0][:5]
    frame.loc[healthy, "RNF"] = 1  # the real file has RNF rows without a failure
    report = validate(frame)
    assert report.ok
    assert "[label-consistency]" in report.render()


def test_few_nulls_are_a_warning(frame: pd.DataFrame) -> None:
    frame = frame.copy()
    frame.loc[[1, 2], TORQUE] = np.nan
    report = validate(frame)
    assert report.ok
    assert "WARNING [nulls]" in report.render()
