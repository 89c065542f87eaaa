"""Helpers for in-process tests: /metrics lives on its own port, so tests read the registry."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest


def scrape(client: Any) -> str:
    """The exposition the metrics port would serve for the app behind a TestClient."""
    return generate_latest(client.app.state.registry).decode()
