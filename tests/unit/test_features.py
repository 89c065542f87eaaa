"""The feature contract is consistent and is the only place feature names are spelled."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from model import features as F
from training import data as D

ROOT = Path(__file__).resolve().parents[2]


def test_order_and_uci_mapping_cover_every_feature() -> None:
    assert F.FEATURE_NAMES[0] == F.PRODUCT_TYPE.name
    assert len(set(F.FEATURE_NAMES)) == 6
    assert set(F.FEATURE_NAMES) <= set(F.UCI_TO_NAME.values())
    assert len(F.UCI_COLUMNS) == 14


def test_bounds_contain_examples() -> None:
    for feature in F.NUMERIC_FEATURES:
        assert feature.minimum < feature.example < feature.maximum


def test_schema_hash_is_stable_and_sensitive() -> None:
    assert F._schema_hash() == F.SCHEMA_HASH
    assert len(F.SCHEMA_HASH) == 64


def test_no_other_module_spells_a_feature_name() -> None:
    names = set(F.FEATURE_NAMES) | {f.source_column for f in F.NUMERIC_FEATURES}
    offenders = []
    for folder in ("model", "training", "service", "loadtest"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "model" / "features.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert offenders == []


def test_power_is_computed_from_the_raw_readings_above_the_clip() -> None:
    """The 3,500 W power-failure rule holds for readings above the learned speed clip.

    Clipping speed (upper bound ~2,200 rpm on AI4I data) before computing power used to move
    readings across the rule: 13.5 Nm at 2,700 rpm is 3,817 W (no power failure), but
    3,100 W from the clipped speed.
    """
    from training.pipeline import build_preprocessor

    train = D.generate(3000, 4)[list(F.FEATURE_NAMES)]
    numeric = build_preprocessor().fit(train).named_transformers_["numeric"]
    readings = pd.DataFrame(
        {
            F.AIR_TEMPERATURE.name: [300.0, 300.0, 300.0],
            F.PROCESS_TEMPERATURE.name: [310.0, 310.0, 310.0],
            F.ROTATIONAL_SPEED.name: [2700.0, 2700.0, 2250.0],
            F.TORQUE.name: [11.0, 13.5, 16.0],
            F.TOOL_WEAR.name: [10.0, 10.0, 10.0],
        }
    )[list(F.NUMERIC_NAMES)]
    unscaled = numeric[:-1].transform(readings)  # imputation, physics, clipping; not scaling
    speed_column = F.NUMERIC_NAMES.index(F.ROTATIONAL_SPEED.name)
    assert unscaled[0, speed_column] < 2700.0  # the reading itself is bounded for the model...
    power = unscaled[:, len(F.NUMERIC_NAMES) + F.ENGINEERED_NAMES.index("power_w")]
    expected = readings[F.TORQUE.name] * readings[F.ROTATIONAL_SPEED.name] * F.RPM_TO_RAD_PER_S
    np.testing.assert_array_equal(power, expected)  # ...the physics is not
    assert list(power < D.PWF_MIN_POWER_W) == [True, False, False]  # 3,110 / 3,817 / 3,770 W
