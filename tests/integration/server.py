"""The real service process for tests (see loadtest/stack.py, shared with the demo)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtest.stack import free_port, service

__all__ = ["free_port", "running_service"]


@contextmanager
def running_service(
    model_dir: Path, log_path: Path, workers: int = 1, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Yield (base URL, process) once /readyz answers 200; SIGTERM it afterwards."""
    with service(model_dir, log_path, workers, **env) as running:
        yield running.url, running.process
