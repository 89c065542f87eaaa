"""The feature contract is consistent and is the only place feature names are spelled."""

from __future__ import annotations

import ast
from pathlib import Path

from training import features as F

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
    for folder in ("training", "service", "loadtest"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "features.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert offenders == []
