"""Service settings, read from FAULTLINE_* environment variables (or passed in by tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Loop-time budget (see docs/service.md, "Security"): the largest request the service accepts must
# not hold the event loop for long, or probes on the same loop time out. Measured on one core:
# a valid reading costs ~5 us, the worst invalid JSON ~55 ms per MB; at these limits one request
# holds the loop for at most ~0.1 s, well inside a 1 s probe timeout.
MAX_BATCH_LIMIT = 5000
MAX_BODY_LIMIT = 2 * 1_048_576
MIN_KEY_LENGTH = 16


class Settings(BaseSettings):
    """Everything the service can be told (`FAULTLINE_*`); every field carries its description,
    listed in docs/service.md (`Settings.model_json_schema()` has them all)."""

    model_config = SettingsConfigDict(
        env_prefix="FAULTLINE_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

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
    max_batch: int = Field(
        1000,
        ge=1,
        le=MAX_BATCH_LIMIT,
        description="Most readings per request (larger batches would stall the event loop).",
    )
    max_body_bytes: int = Field(
        524_288,
        ge=1024,
        le=MAX_BODY_LIMIT,
        description="Largest request body in bytes (413); parsing it runs on the event loop.",
    )
    max_header_bytes: int = Field(
        16_384,
        ge=1024,
        le=1_048_576,
        description="Largest request line plus headers in bytes (431 and close beyond).",
    )
    max_headers: int = Field(
        100, ge=8, le=1000, description="Most header fields per request (431 and close beyond)."
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Time for a request's line and headers to arrive once it has started (and "
        "for a new connection's first request); 408 and close beyond.",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Time for a request body to arrive completely after its headers; 408 and "
        "close beyond.",
    )
    metrics_port: int = Field(
        9000,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics listener (never the API port); 0: none.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the metrics listener binds (`faultline serve` sets the API's).",
    )
    api_keys_file: Path | None = Field(
        None,
        description="File of API keys / bearer tokens, one per line ('#' comments): when set "
        "(or api_keys), /v1/* requires `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
    )
    api_keys: str | None = Field(
        None,
        description="Comma-separated API keys (prefer api_keys_file, mounted from a Secret).",
        repr=False,
    )
    model_details: bool = Field(
        False,
        description="/v1/model also reveals provenance: git commit, library versions, training "
        "data fingerprint and parameters (off: version, threshold, metrics, schema, hash).",
    )
    openapi: bool = Field(
        False,
        description="Serve /openapi.json (no docs UI is served: it would load from a CDN).",
    )
    drift_max_request_share: float = Field(
        0.05,
        gt=0,
        le=1.0,
        description="Largest share of the drift window one request may fill (a larger batch "
        "contributes an evenly spaced sample of its readings).",
    )
    drain_idle_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="On SIGTERM, how long an idle keep-alive connection stays open for a "
        "request already on its way (answered with Connection: close).",
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
    model_name: str = Field(
        "faultline",
        pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$",
        description="The model's name on the Open Inference Protocol: /v2/models/{name}/infer.",
    )
    serving_form: bool = Field(
        True,
        description="Serve with the bundle's serving form (numpy + ONNX Runtime, parity-tested) "
        "when usable; false: the skops Pipeline (imports scikit-learn).",
    )
    explainer_url: str = Field(
        "",
        pattern=r"^(https?://[^\s/?#]+/?)?$",
        description="Base URL of the explainer (`python -m explainer`), e.g. "
        "http://faultline-explainer:8001; empty: POST /v1/explain answers 503.",
    )
    explain_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Most time one POST /v1/explain waits for the explainer (504 beyond).",
    )
    explain_max_batch: int = Field(
        100,
        ge=1,
        le=MAX_BATCH_LIMIT,
        description="Most readings per POST /v1/explain (422 beyond); at most the explainer's "
        "own FAULTLINE_EXPLAINER_MAX_BATCH.",
    )
    explain_max_connections: int = Field(
        8,
        ge=1,
        le=256,
        description="Connections to the explainer at once; a request that finds none free "
        "within the timeout gets 503.",
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

    @model_validator(mode="after")
    def _keys_are_strong(self) -> Settings:
        if len(self.api_key_list()) == 0 and (self.api_keys_file or self.api_keys):
            raise ValueError("API keys are configured but none was found")
        return self

    def api_key_list(self) -> list[str]:
        """The configured API keys (file and environment); empty: auth is off."""
        keys = [k.strip() for k in (self.api_keys or "").split(",") if k.strip()]
        if self.api_keys_file is not None:
            try:
                lines = self.api_keys_file.read_text().splitlines()
            except OSError as exc:
                raise ValueError(f"cannot read api_keys_file: {exc}") from exc
            keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        weak = [k for k in keys if len(k) < MIN_KEY_LENGTH]
        if weak:
            raise ValueError(f"{len(weak)} API key(s) shorter than {MIN_KEY_LENGTH} characters")
        return keys

    @field_validator("model_dir")
    @classmethod
    def _no_relative_escape(cls, value: Path) -> Path:
        if ".." in value.parts:
            raise ValueError("model_dir must not contain '..'")
        return value
