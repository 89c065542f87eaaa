"""structlog configuration: JSON lines to stdout (pretty on a TTY), stdlib routed through it."""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from typing import Any

import orjson
import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


@functools.cache
def _stdout() -> Any:
    """fd 1 as an unbuffered binary file, opened once, when logging is configured (not at
    import)."""
    return open(1, "wb", buffering=0, closefd=False)  # lives as long as the process


def _json_bytes(event: dict[str, Any], **_: Any) -> bytes:
    return orjson.dumps(event, default=str)


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and the stdlib root logger (uvicorn's own logs) identically."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        renderer: Any = structlog.processors.JSONRenderer(serializer=_json_bytes)
        tail: list[Any] = [structlog.processors.dict_tracebacks, renderer]
        # fd 1 itself, unbuffered: one write per line (nothing lost on a crash), and it follows
        # whatever stdout is redirected to later
        factory: Any = structlog.BytesLoggerFactory(file=_stdout())
    else:
        tail = [structlog.dev.ConsoleRenderer()]
        factory = structlog.PrintLoggerFactory()
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # stdlib loggers (uvicorn, asyncio) render through the same processors
    stdlib_renderer = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.dict_tracebacks] if as_json else []),
                stdlib_renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # replaced by the canonical line


def flush() -> None:
    """Flush stdout (at shutdown)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed pipe at shutdown
            stream.flush()
