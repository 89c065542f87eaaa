"""Service settings, read from FAULTLINE_* environment variables (or passed in by tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be told; every field documents itself in `faultline --help`."""

    model_config = SettingsConfigDict(env_prefix="FAULTLINE_", extra="ignore", frozen=True)

    model_dir: Path = Field(
        Path("artifacts/models"),
        description="A bundle directory, or a models directory (the newest bundle is served).",
    )
    bundle_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Serve only the bundle with this hash (`bundle_hash` in /v1/model and "
        "`python -m training hash`); any other stays not ready.",
    )
    max_batch: int = Field(1000, ge=1, le=100_000, description="Most readings per request.")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=64 * 1_048_576, description="Largest request body in bytes (413)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Minimum log level."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="json, console (pretty), or auto: console on a TTY, else JSON."
    )
    prediction_log_sample_rate: float = Field(
        0.01, ge=0.0, le=1.0, description="Share of requests whose inputs and outputs are logged."
    )
    drift_window: int = Field(
        2000, ge=50, le=1_000_000, description="Recent readings compared with the reference."
    )
    drift_min_readings: int = Field(
        200, ge=10, description="Readings needed before drift gauges are published."
    )
    drift_update_seconds: float = Field(
        1.0, gt=0, le=60, description="How often drift statistics are recomputed."
    )
    drain_seconds: float = Field(
        20.0, ge=0, le=300, description="On SIGTERM, how long in-flight requests may finish."
    )
    batch_window_us: int = Field(
        0,
        ge=0,
        le=10_000,
        description="Extra wait (microseconds) to coalesce concurrent requests into one model "
        "call; 0 coalesces only what arrives while the model is busy (no added latency).",
    )
    max_micro_batch: int = Field(
        256, ge=1, le=10_000, description="Most readings per coalesced model call."
    )
    fast_path: bool = Field(
        True, description="Use the serving form (numpy + ONNX Runtime, parity-tested) if usable."
    )
    fault_error_ratio: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="TESTING ONLY: share of predictions answered with 503 (canary analysis tests).",
    )
    fault_delay_ms: float = Field(
        0.0, ge=0.0, le=10_000, description="TESTING ONLY: delay added to every prediction."
    )

    @field_validator("model_dir")
    @classmethod
    def _no_relative_escape(cls, value: Path) -> Path:
        if ".." in value.parts:
            raise ValueError("model_dir must not contain '..'")
        return value
