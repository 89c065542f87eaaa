"""What one app instance holds: settings, metrics, and (once ready) the Predictor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from service.config import Settings
from service.metrics import ServiceMetrics
from service.predictor import Predictor

if TYPE_CHECKING:
    from service.explainer_client import ExplainerProxy


@dataclass
class AppState:
    """Mutable per-app state; routes read it through the `State` dependency."""

    settings: Settings
    metrics: ServiceMetrics
    batch_adapter: TypeAdapter[Any]
    predictor: Predictor | None = None
    not_ready_reason: str = "the model bundle is still loading"
    model_body: bytes | None = None  # GET /v1/model, rendered once at load
    ready_body: bytes | None = None  # GET /readyz when ready
    explainer: ExplainerProxy | None = None  # set in the lifespan when FAULTLINE_EXPLAINER_URL is
    # one large request's CPU steps at a time (see service.routes.LARGE_BODY)
    large_requests: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    def count_invalid(self, reasons: list[tuple[str, str]]) -> None:
        version = self.predictor.version if self.predictor else "none"
        for reason, field_name in reasons:
            self.metrics.invalid.labels(version, reason, field_name).inc()

    def count_client_gone(self) -> None:
        version = self.predictor.version if self.predictor else "none"
        self.metrics.client_disconnects.labels(version).inc()
