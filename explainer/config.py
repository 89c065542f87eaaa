"""Explainer settings, read from FAULTLINE_EXPLAINER_* environment variables (or passed in)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.config import MAX_BODY_LIMIT


class ExplainerSettings(BaseSettings):
    """Everything the explainer can be told (`FAULTLINE_EXPLAINER_*`), listed in
    docs/service.md."""

    model_config = SettingsConfigDict(
        env_prefix="FAULTLINE_EXPLAINER_",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
        populate_by_name=True,
    )

    model_dir: Path = Field(
        Path("artifacts/models"),
        # the service's variable too: one pod spec, or one shell, names the bundle once
        validation_alias=AliasChoices(
            "model_dir", "FAULTLINE_EXPLAINER_MODEL_DIR", "FAULTLINE_MODEL_DIR"
        ),
        description="A bundle directory, or a models directory (the newest bundle is "
        "explained); FAULTLINE_MODEL_DIR when unset.",
    )
    max_batch: int = Field(
        100,
        ge=1,
        le=1000,
        description="Most readings per POST /v1/explain (422 beyond): bounds one request's CPU.",
    )
    max_body_bytes: int = Field(
        262_144,
        ge=1024,
        le=MAX_BODY_LIMIT,
        description="Largest request body in bytes (413).",
    )
    threads: int = Field(
        1,
        ge=1,
        le=16,
        description="Threads computing attributions; the event loop (and probes) stays free.",
    )
    max_pending: int = Field(
        8,
        ge=1,
        le=1000,
        description="Requests computing or waiting for a thread at once; 503 beyond.",
    )
    window: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Explained readings behind faultline_attribution_mean_abs (a rolling window).",
    )
    metrics_port: int = Field(
        9101,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics listener (never the API port); 0: none.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the metrics listener binds (`python -m explainer` sets the API's).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Minimum log level."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="json, console (pretty), or auto: console on a TTY, else JSON."
    )

    @field_validator("model_dir")
    @classmethod
    def _no_relative_escape(cls, value: Path) -> Path:
        if ".." in value.parts:
            raise ValueError("model_dir must not contain '..'")
        return value
