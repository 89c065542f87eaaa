"""Request and response models, built from the feature contract (strict: no coercion)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from training import features as F

STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _example() -> dict[str, Any]:
    return F.example_reading()


def _reading_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        F.PRODUCT_TYPE.name: (
            Literal[F.PRODUCT_TYPE.categories],
            Field(description=F.PRODUCT_TYPE.description, examples=[F.PRODUCT_TYPE.example]),
        )
    }
    for feature in F.NUMERIC_FEATURES:
        fields[feature.name] = (
            float,
            Field(
                ge=feature.minimum,
                le=feature.maximum,
                description=f"{feature.description} Unit: {feature.unit}.",
                examples=[feature.example],
            ),
        )
    config = ConfigDict(**STRICT, json_schema_extra={"examples": [_example()]})
    return create_model("Reading", __config__=config, **fields)


Reading: type[BaseModel] = _reading_model()


def batch_model(max_batch: int) -> type[BaseModel]:
    """`{"instances": [...]}` with the configured batch limit in its schema."""
    return create_model(
        "Batch",
        __config__=ConfigDict(
            **STRICT,
            json_schema_extra={"examples": [{"instances": [_example(), _example()]}]},
        ),
        instances=(
            list[Reading],  # type: ignore[valid-type]
            Field(min_length=1, max_length=max_batch, description="Readings to score."),
        ),
    )


class PredictionOut(BaseModel):
    """The model's answer for one reading."""

    failure_probability: float = Field(ge=0, le=1, description="P(machine failure).")
    failure: bool = Field(description="failure_probability >= the bundle's decision threshold.")


class PredictResponse(BaseModel):
    """Predictions in request order."""

    model_config = ConfigDict(protected_namespaces=())
    model_version: str = Field(description="Version of the bundle that answered.")
    request_id: str = Field(description="Echo of X-Request-ID (or the generated one).")
    threshold: float = Field(description="Decision threshold of the bundle.")
    predictions: list[PredictionOut]


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
