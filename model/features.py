"""The feature contract: the single place that names, types and bounds every model input.

Everything else (data generation, validation, the Pipeline, the service's request models,
load-test payloads, drift metrics) derives from the definitions here. Changing anything
below changes SCHEMA_HASH, and bundles made for another schema are refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class NumericFeature:
    """A continuous sensor reading with its unit and physically plausible range."""

    name: str  # API / DataFrame name (snake_case)
    source_column: str  # column in the UCI AI4I 2020 CSV
    unit: str
    minimum: float
    maximum: float
    description: str
    example: float
    dtype: Literal["float64"] = "float64"


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical input with its closed set of allowed values."""

    name: str
    source_column: str
    categories: tuple[str, ...]
    description: str
    example: str
    dtype: Literal["category"] = "category"


# Product quality variant. Must stay first: the UCI file lists it first as well.
PRODUCT_TYPE = CategoricalFeature(
    name="product_type",
    source_column="Type",
    categories=("L", "M", "H"),
    description="Product quality variant: L (low, 50 %), M (medium, 30 %), H (high, 20 %).",
    example="M",
)

# Bounds are physical plausibility limits (wider than the dataset's range), not data ranges:
# a reading outside them is a broken sensor or a unit mistake, never a machine state.
NUMERIC_FEATURES: tuple[NumericFeature, ...] = (
    NumericFeature(
        name="air_temperature_k",
        source_column="Air temperature [K]",
        unit="K",
        minimum=250.0,
        maximum=350.0,
        description="Ambient air temperature in kelvin.",
        example=300.1,
    ),
    NumericFeature(
        name="process_temperature_k",
        source_column="Process temperature [K]",
        unit="K",
        minimum=250.0,
        maximum=370.0,
        description="Process temperature in kelvin.",
        example=310.2,
    ),
    NumericFeature(
        name="rotational_speed_rpm",
        source_column="Rotational speed [rpm]",
        unit="rpm",
        minimum=0.0,
        maximum=5000.0,
        description="Spindle rotational speed in revolutions per minute.",
        example=1500.0,
    ),
    NumericFeature(
        name="torque_nm",
        source_column="Torque [Nm]",
        unit="Nm",
        minimum=0.0,
        maximum=150.0,
        description="Spindle torque in newton-metres.",
        example=40.0,
    ),
    NumericFeature(
        name="tool_wear_min",
        source_column="Tool wear [min]",
        unit="min",
        minimum=0.0,
        maximum=400.0,
        description="Accumulated tool usage in minutes.",
        example=100.0,
    ),
)

AIR_TEMPERATURE, PROCESS_TEMPERATURE, ROTATIONAL_SPEED, TORQUE, TOOL_WEAR = NUMERIC_FEATURES

NUMERIC_NAMES: tuple[str, ...] = tuple(f.name for f in NUMERIC_FEATURES)
FEATURE_NAMES: tuple[str, ...] = (PRODUCT_TYPE.name, *NUMERIC_NAMES)
NUMERIC_BY_NAME: dict[str, NumericFeature] = {f.name: f for f in NUMERIC_FEATURES}

# Target and the five failure-mode labels of AI4I 2020.
TARGET = "machine_failure"
TARGET_SOURCE_COLUMN = "Machine failure"
FAILURE_MODES: tuple[str, ...] = ("TWF", "HDF", "PWF", "OSF", "RNF")
FAILURE_MODE_DESCRIPTIONS: dict[str, str] = {
    "TWF": "tool wear failure",
    "HDF": "heat dissipation failure",
    "PWF": "power failure",
    "OSF": "overstrain failure",
    "RNF": "random failure",
}
LABEL_COLUMNS: tuple[str, ...] = (TARGET, *FAILURE_MODES)

# Identifier columns of the UCI file: kept for traceability, never model inputs.
ID_COLUMNS: tuple[str, ...] = ("udi", "product_id")
UCI_ID_SOURCE_COLUMNS: dict[str, str] = {"udi": "UDI", "product_id": "Product ID"}

# Engineered features, computed inside the Pipeline (and by the bundle's serving form) by
# add_engineered below: the physics the published failure rules depend on.
ENGINEERED_NAMES: tuple[str, ...] = ("temperature_difference_k", "power_w", "strain_min_nm")
RPM_TO_RAD_PER_S = 2.0 * np.pi / 60.0
# The raw readings each engineered feature is computed from (add_engineered): attributions
# (explainer.attributions) split an engineered feature's share equally among them.
ENGINEERED_FROM: dict[str, tuple[str, ...]] = {
    "temperature_difference_k": (AIR_TEMPERATURE.name, PROCESS_TEMPERATURE.name),
    "power_w": (TORQUE.name, ROTATIONAL_SPEED.name),
    "strain_min_nm": (TOOL_WEAR.name, TORQUE.name),
}

# The exact column order of the UCI file, and the mapping to our names.
UCI_COLUMNS: tuple[str, ...] = (
    "UDI",
    "Product ID",
    PRODUCT_TYPE.source_column,
    *(f.source_column for f in NUMERIC_FEATURES),
    TARGET_SOURCE_COLUMN,
    *FAILURE_MODES,
)
UCI_TO_NAME: dict[str, str] = {
    **{v: k for k, v in UCI_ID_SOURCE_COLUMNS.items()},
    PRODUCT_TYPE.source_column: PRODUCT_TYPE.name,
    **{f.source_column: f.name for f in NUMERIC_FEATURES},
    TARGET_SOURCE_COLUMN: TARGET,
    **{m: m for m in FAILURE_MODES},
}


def schema_dict() -> dict[str, object]:
    """The schema as plain data: what the hash covers and what bundles record."""
    return {
        "features": [asdict(PRODUCT_TYPE), *(asdict(f) for f in NUMERIC_FEATURES)],
        "order": list(FEATURE_NAMES),
        "target": TARGET,
        "failure_modes": list(FAILURE_MODES),
    }


def _schema_hash() -> str:
    canonical = json.dumps(schema_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


SCHEMA_HASH: str = _schema_hash()


def example_reading() -> dict[str, object]:
    """One valid reading built from the documented examples (OpenAPI, smoke tests)."""
    return {
        PRODUCT_TYPE.name: PRODUCT_TYPE.example,
        **{f.name: f.example for f in NUMERIC_FEATURES},
    }


_COLUMN = {name: i for i, name in enumerate(NUMERIC_NAMES)}


def add_engineered(X: np.ndarray) -> np.ndarray:
    """Numeric columns in NUMERIC_NAMES order -> the same plus ENGINEERED_NAMES columns."""
    air = X[:, _COLUMN[AIR_TEMPERATURE.name]]
    process = X[:, _COLUMN[PROCESS_TEMPERATURE.name]]
    speed = X[:, _COLUMN[ROTATIONAL_SPEED.name]]
    torque = X[:, _COLUMN[TORQUE.name]]
    wear = X[:, _COLUMN[TOOL_WEAR.name]]
    extra = np.column_stack([process - air, torque * speed * RPM_TO_RAD_PER_S, wear * torque])
    return np.hstack([X, extra])
