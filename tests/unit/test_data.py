"""The generator reproduces each published failure rule; the UCI loader reads the real format."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import data as D
from training import features as F
from training.bundle import sha256_file


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return D.generate(20_000, seed=3)


def _power(frame: pd.DataFrame) -> pd.Series:
    return frame[F.TORQUE.name] * frame[F.ROTATIONAL_SPEED.name] * 2 * np.pi / 60


def test_deterministic_per_seed() -> None:
    pd.testing.assert_frame_equal(D.generate(500, 9), D.generate(500, 9))
    assert not D.generate(500, 9).equals(D.generate(500, 10))


def test_marginals_follow_the_published_process(frame: pd.DataFrame) -> None:
    shares = frame[F.PRODUCT_TYPE.name].value_counts(normalize=True)
    assert shares["L"] == pytest.approx(0.5, abs=0.02)
    assert shares["M"] == pytest.approx(0.3, abs=0.02)
    assert shares["H"] == pytest.approx(0.2, abs=0.02)
    air = frame[F.AIR_TEMPERATURE.name]
    assert air.mean() == pytest.approx(300, abs=0.05)
    assert air.std() == pytest.approx(2, abs=0.05)
    diff = frame[F.PROCESS_TEMPERATURE.name] - air
    assert diff.mean() == pytest.approx(10, abs=0.05)
    assert diff.std() == pytest.approx(1, abs=0.05)
    torque = frame[F.TORQUE.name]
    assert (torque >= 0).all()
    assert torque.mean() == pytest.approx(40, abs=0.5)
    speed = frame[F.ROTATIONAL_SPEED.name]
    assert speed.mean() == pytest.approx(1539, abs=25)
    assert np.corrcoef(speed, torque)[0, 1] < -0.8


def test_tool_wear_grows_by_type_and_resets(frame: pd.DataFrame) -> None:
    wear = frame[F.TOOL_WEAR.name].to_numpy()
    step = np.diff(wear)
    grew = step > 0
    added = frame[F.PRODUCT_TYPE.name].to_numpy()[1:][grew]
    expected = np.vectorize(D.WEAR_PER_PROCESS_MIN.__getitem__)(added)
    assert (step[grew] == expected).all()
    assert wear.max() <= D.TOOL_LIFE_MIN[1] + max(D.WEAR_PER_PROCESS_MIN.values())


def test_twf_only_in_the_tool_life_window(frame: pd.DataFrame) -> None:
    wear = frame.loc[frame["TWF"] == 1, F.TOOL_WEAR.name]
    assert len(wear) > 0
    assert wear.between(D.TOOL_LIFE_MIN[0], D.TOOL_LIFE_MIN[1] + 5).all()


def test_hdf_rule(frame: pd.DataFrame) -> None:
    diff = frame[F.PROCESS_TEMPERATURE.name] - frame[F.AIR_TEMPERATURE.name]
    rule = (diff < D.HDF_MAX_TEMP_DIFF_K) & (frame[F.ROTATIONAL_SPEED.name] < D.HDF_MAX_SPEED_RPM)
    assert rule.sum() > 0
    assert (frame["HDF"] == rule.astype(int)).all()


def test_pwf_rule(frame: pd.DataFrame) -> None:
    power = _power(frame)
    rule = (power < D.PWF_MIN_POWER_W) | (power > D.PWF_MAX_POWER_W)
    assert rule.sum() > 0
    assert (frame["PWF"] == rule.astype(int)).all()


def test_osf_rule_depends_on_type(frame: pd.DataFrame) -> None:
    limit = frame[F.PRODUCT_TYPE.name].map(D.OVERSTRAIN_LIMIT_MIN_NM)
    rule = frame[F.TOOL_WEAR.name] * frame[F.TORQUE.name] > limit
    assert rule.sum() > 0
    assert (frame["OSF"] == rule.astype(int)).all()


def test_rnf_rate_and_target_is_any_mode(frame: pd.DataFrame) -> None:
    assert frame["RNF"].mean() == pytest.approx(D.RNF_PROBABILITY, abs=0.001)
    assert (frame[F.TARGET] == frame[list(F.FAILURE_MODES)].max(axis=1)).all()
    assert 0.01 < frame[F.TARGET].mean() < 0.08


def _uci_text(rows: pd.DataFrame) -> str:
    out = rows.rename(columns={v: k for k, v in F.UCI_TO_NAME.items()})
    return out[list(F.UCI_COLUMNS)].to_csv(index=False)


def test_loader_reads_the_exact_uci_format(tmp_path: Path) -> None:
    sample = D.generate(50, 1)
    path = tmp_path / "ai4i2020.csv"
    path.write_text(_uci_text(sample))
    assert path.read_text().splitlines()[0] == (
        "UDI,Product ID,Type,Air temperature [K],Process temperature [K],"
        "Rotational speed [rpm],Torque [Nm],Tool wear [min],Machine failure,TWF,HDF,PWF,OSF,RNF"
    )
    loaded = D.load_dataset(path)
    assert list(loaded.columns) == [*F.ID_COLUMNS, *F.FEATURE_NAMES, *F.LABEL_COLUMNS]
    pd.testing.assert_frame_equal(loaded.reset_index(drop=True), sample, check_dtype=False)


def test_loader_names_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(_uci_text(D.generate(5, 1)).replace("Torque [Nm]", "Torque"))
    with pytest.raises(ValueError, match=r"missing columns \['Torque \[Nm\]'\]"):
        D.load_uci_csv(path)


def _zip_with(csv_text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(D.UCI_FILE_NAME, csv_text)
    return buffer.getvalue()


def _published_like() -> pd.DataFrame:
    """A frame with the published row and label counts (content check passes)."""
    frame = D.generate(D.UCI_EXPECTED_ROWS, 5)
    for column in D.UCI_EXPECTED_LABEL_COUNTS:
        frame[column] = 0
        frame.loc[: D.UCI_EXPECTED_LABEL_COUNTS[column] - 1, column] = 1
    return frame


def test_download_verifies_checksum_and_content(tmp_path: Path) -> None:
    payload = _zip_with(_uci_text(_published_like()))
    dest = tmp_path / "ai4i2020.csv"
    path, digest = D.download_uci(dest, None, fetch=lambda _url: payload)
    assert path == dest and sha256_file(dest) == digest
    with pytest.raises(ValueError, match="checksum mismatch"):
        D.download_uci(tmp_path / "other.csv", "0" * 64, fetch=lambda _url: payload)
    assert not (tmp_path / "other.csv").exists()


def test_download_refuses_wrong_content(tmp_path: Path) -> None:
    payload = _zip_with(_uci_text(D.generate(100, 1)))
    with pytest.raises(ValueError, match="does not match the published"):
        D.download_uci(tmp_path / "x.csv", None, fetch=lambda _url: payload)
    assert list(tmp_path.iterdir()) == []


def test_download_refuses_plain_http() -> None:
    with pytest.raises(ValueError, match="non-HTTPS"):
        D._http_get("http://example.invalid/x.zip")
