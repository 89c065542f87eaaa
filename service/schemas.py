"""Request and response schemas, built from the feature contract (strict: no coercion).

Readings are TypedDicts validated by pydantic-core straight into plain dicts (no model objects
to build and dump per reading); the same adapters produce the OpenAPI schemas.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from model import features as F


def _example() -> dict[str, Any]:
    return F.example_reading()


def _reading_type() -> type:
    fields: dict[str, Any] = {
        F.PRODUCT_TYPE.name: Annotated[
            Literal[F.PRODUCT_TYPE.categories],
            Field(description=F.PRODUCT_TYPE.description, examples=[F.PRODUCT_TYPE.example]),
        ]
    }
    for feature in F.NUMERIC_FEATURES:
        fields[feature.name] = Annotated[
            float,
            Field(
                ge=feature.minimum,
                le=feature.maximum,
                allow_inf_nan=False,
                description=f"{feature.description} Unit: {feature.unit}.",
                examples=[feature.example],
            ),
        ]
    reading = TypedDict("Reading", fields)  # type: ignore[misc]
    reading.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        extra="forbid", strict=True, title="Reading", json_schema_extra={"examples": [_example()]}
    )
    return reading


Reading = _reading_type()
READING: TypeAdapter[Any] = TypeAdapter(Reading)


def batch_adapter(max_batch: int) -> TypeAdapter[Any]:
    """The validator of `batch_type(max_batch)`."""
    return TypeAdapter(batch_type(max_batch))


@functools.cache  # one type per limit and process: every app (and test) built with it shares it
def batch_type(max_batch: int, title: str = "Batch") -> Any:
    """`{"instances": [...]}` with the configured batch limit in its schema (`title`: its
    OpenAPI name, one per limit)."""
    Batch = TypedDict(  # type: ignore[misc]  # noqa: UP013 (the limit is a runtime setting)
        title,
        {
            "instances": Annotated[
                list[Reading],  # type: ignore[valid-type]
                # fail_fast: an invalid batch stops at its first bad reading (the diagnosis in
                # service.validation then lists problems, bounded)
                Field(
                    min_length=1,
                    max_length=max_batch,
                    fail_fast=True,
                    description="Readings to score.",
                ),
            ]
        },
    )
    Batch.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        extra="forbid",
        strict=True,
        title=title,
        json_schema_extra={"examples": [{"instances": [_example()] * 2}]},
    )
    return Batch


class PredictionOut(BaseModel):
    """The model's answer for one reading."""

    failure_probability: float = Field(
        ge=0, le=1, description="Calibrated P(machine failure): that share of such readings fail."
    )
    failure: bool = Field(description="The decision: failure_probability >= threshold.")
    threshold: float = Field(
        ge=0,
        le=1,
        description="The decision threshold this answer used: 1 / (1 + cost ratio of a missed "
        "failure to a false alarm), from the bundle (GET /v1/model: threshold_objective).",
    )


class PredictResponse(BaseModel):
    """Predictions in request order."""

    model_config = ConfigDict(protected_namespaces=())
    model_version: str = Field(description="Version of the bundle that answered.")
    request_id: str = Field(description="Echo of X-Request-ID (or the generated one).")
    threshold: float = Field(description="Decision threshold of the bundle.")
    predictions: list[PredictionOut]


class ExplanationOut(BaseModel):
    """Why the model scored one reading as it did: additive attributions per raw feature."""

    failure_probability: float = Field(
        ge=0, le=1, description="Calibrated P(machine failure), as POST /v1/predict answers it."
    )
    raw_score: float = Field(
        description="The model's score before calibration, in the unit `output` names: "
        "base_value + the sum of attributions."
    )
    attributions: dict[str, float] = Field(
        description="Each raw feature's contribution to raw_score (positive: towards failure)."
    )


class ExplainResponse(BaseModel):
    """Explanations in request order, from the explainer serving this service's bundle."""

    model_config = ConfigDict(protected_namespaces=())
    model_version: str = Field(description="Version of the bundle that answered.")
    request_id: str = Field(description="Echo of X-Request-ID (or the generated one).")
    output: Literal["log-odds", "probability"] = Field(
        description="The unit of base_value, raw_score and attributions."
    )
    base_value: float = Field(description="The expected raw score over the reference data.")
    features: list[str] = Field(description="Feature names, in the contract's order.")
    explanations: list[ExplanationOut]


class ErrorBody(BaseModel):
    """Error details: type is a stable machine-readable code."""

    type: str = Field(examples=["invalid_input"])
    message: str
    details: list[dict[str, Any]] | dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """Every non-2xx answer has this shape."""

    error: ErrorBody


class Health(BaseModel):
    """Liveness or readiness state."""

    model_config = ConfigDict(protected_namespaces=())
    status: Literal["ok", "ready"]
    model_version: str | None = None
