"""Each class of bad data is caught with a message naming the rule, the column and the rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model import features as F
from training import data as D
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
    "wrong type": (_set(TORQUE, [4, 9], "forty"), "type", TORQUE, "UDI 5, 10"),
    "unknown category": (
        _set(F.PRODUCT_TYPE.name, [7], "X"),
        "type",
        F.PRODUCT_TYPE.name,
        "UDI 8",
    ),
    "out of range": (_set(TORQUE, [3], 999.0), "range", TORQUE, "UDI 4"),
    "infinite": (_set(TORQUE, [5], np.inf), "range", TORQUE, "UDI 6"),
    "too many nulls": (_set(TORQUE, list(range(100)), np.nan), "nulls", TORQUE, "UDI 1, 2"),
    "duplicate id": (
        _set("udi", [10], 1),
        "duplicates",
        "udi",
        "rows at 0-based positions 10",
    ),
    "non-binary label": (_set(F.TARGET, [2], 3), "labels", F.TARGET, "UDI 3"),
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


def test_rows_are_named_by_udi_or_as_0_based_positions(frame: pd.DataFrame) -> None:
    """Positions used to be listed as 'rows 4' and read like UDIs (UDI 4 is position 3)."""
    bad = frame.copy()
    bad.loc[[4, 9], TORQUE] = 999.0
    assert "(UDI 5, 10)" in validate(bad).render()
    shuffled = bad.iloc[::-1].reset_index(drop=True)  # UDI no longer position + 1
    assert "(UDI 10, 5)" in validate(shuffled).render()
    no_ids = bad.drop(columns=["udi", "product_id"])
    assert "(rows at 0-based positions 4, 9)" in validate(no_ids).render()


def _uci_file(path: Path, frame: pd.DataFrame, sep: str = ",") -> Path:
    out = frame.rename(columns={v: k for k, v in F.UCI_TO_NAME.items()})[list(F.UCI_COLUMNS)]
    out.to_csv(path, index=False, sep=sep)
    return path


def test_validate_cli_checks_a_uci_named_file_against_the_published_counts(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    """Only `download` used to check the published counts; `validate` and `train --data`
    accepted a changed ai4i2020.csv without a word."""
    from typer.testing import CliRunner

    from training.__main__ import app

    result = CliRunner().invoke(app, ["validate", str(_uci_file(tmp_path / "ai4i2020.csv", frame))])
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.output and "published counts" in result.output
    assert "3000 rows (published 10000)" in result.output
    other = CliRunner().invoke(app, ["validate", str(_uci_file(tmp_path / "mine.csv", frame))])
    assert other.exit_code == 0 and "published counts" not in other.output


def test_validate_cli_names_a_wrong_delimiter(frame: pd.DataFrame, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from training.__main__ import app

    path = _uci_file(tmp_path / "ai4i2020.csv", frame, sep="\t")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "tab-separated" in " ".join(result.output.split())
    assert "column is missing" not in result.output


def test_train_data_loading_warns_on_a_changed_uci_file(
    frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train --data ai4i2020.csv` loads through the same check as `validate`."""
    import typer

    from training.__main__ import _load

    loaded, source = _load(_uci_file(tmp_path / "ai4i2020.csv", frame), 0, 0)
    assert len(loaded) == len(frame) and "ai4i2020.csv" in source
    assert "published counts" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(typer.Exit):
        _load(_uci_file(tmp_path / "x.csv", frame, sep=";"), 0, 0)
    assert "semicolon-separated" in " ".join(capsys.readouterr().err.split())
