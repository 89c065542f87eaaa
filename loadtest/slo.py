"""The SLO gate: the run fails when the failure ratio, p95 or p99 exceed the SLO numbers.

The defaults are the alerting SLOs (prometheus/rules/faultline-alerts.yml): 99.5 % of requests
succeed, 99 % complete within 25 ms; plus p95 within 10 ms.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("faultline.slo")


def violations(stats: Any, max_failure_ratio: float, p95_ms: float, p99_ms: float) -> list[str]:
    """What broke the SLO in a Locust stats total (empty when the run passes)."""
    if stats.num_requests == 0:
        return ["no requests were made"]
    found = []
    if stats.fail_ratio > max_failure_ratio:
        found.append(f"failure ratio {stats.fail_ratio:.4f} > {max_failure_ratio}")
    p95 = stats.get_response_time_percentile(0.95)
    p99 = stats.get_response_time_percentile(0.99)
    if p95 > p95_ms:
        found.append(f"p95 {p95:.1f} ms > {p95_ms} ms")
    if p99 > p99_ms:
        found.append(f"p99 {p99:.1f} ms > {p99_ms} ms")
    return found


def gate(environment: Any) -> None:
    """Set the process exit code from the SLOs (Locust's `quitting` event)."""
    options = environment.parsed_options
    broken = violations(
        environment.stats.total,
        getattr(options, "slo_max_failure_ratio", 0.005),
        getattr(options, "slo_p95_ms", 10.0),
        getattr(options, "slo_p99_ms", 25.0),
    )
    if broken:
        log.error("SLO gate FAILED: %s", "; ".join(broken))
        environment.process_exit_code = 1
    else:
        log.warning("SLO gate passed")
        environment.process_exit_code = 0
