"""Helpers for in-process tests: /metrics lives on its own port, so tests read the registry."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest


def scrape(client: Any) -> str:
    """The exposition the metrics port would serve for the app behind a TestClient."""
    return generate_latest(client.app.state.registry).decode()


def schemathesis(spec: str, work: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`st run` on an OpenAPI document (a URL or a file), seeded, in `work`."""
    command = ["st", "run", spec, *options, "--seed", "1", "--no-color"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=work)
