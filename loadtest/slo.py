"""The SLO gate: the run fails when the failure ratio, p95 or p99 exceed the SLO numbers.

The numbers are the alerting SLOs of prometheus/observability.yml (the one observability
config): the availability error budget as the failure ratio, the latency SLO bound as p99,
and its p95 bound. Only /v1/predict requests count (each user's warm-up request does not).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parents[1] / "prometheus"))
from observability import load

log = logging.getLogger("faultline.slo")

CONFIG = load()
MAX_FAILURE_RATIO = CONFIG.availability_budget
P95_MS = CONFIG.p95_ms
P99_MS = CONFIG.latency_ms
SELECTOR = CONFIG.job  # the service's series, as the rules select them
PREDICT = CONFIG.predict


def violations(stats: Any, max_failure_ratio: float, p95_ms: float, p99_ms: float) -> list[str]:
    """What broke the SLO in a Locust stats entry (empty when the run passes)."""
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


def predict_stats(environment: Any) -> Any:
    """All /v1/predict entries merged into one (warm-up requests left out)."""
    from locust.stats import StatsEntry

    merged = StatsEntry(environment.stats, "/v1/predict (all)", "POST")
    for (name, _method), entry in environment.stats.entries.items():
        if name.startswith("/v1/predict"):
            merged.extend(entry)
    return merged


def gate(environment: Any) -> None:
    """Set the process exit code from the SLOs (Locust's `quitting` event)."""
    options = environment.parsed_options
    stats = predict_stats(environment)
    broken = violations(
        stats,
        getattr(options, "slo_max_failure_ratio", MAX_FAILURE_RATIO),
        getattr(options, "slo_p95_ms", P95_MS),
        getattr(options, "slo_p99_ms", P99_MS),
    )
    summary_path = getattr(options, "summary_json", "")
    if summary_path:
        summary = {
            "requests": stats.num_requests,
            "failures": stats.num_failures,
            "failure_ratio": stats.fail_ratio,
            "requests_per_s": stats.total_rps,
            **{f"p{q}_ms": stats.get_response_time_percentile(q / 100) for q in (50, 95, 99)},
            "gate": "failed" if broken else "passed",
            "violations": broken,
        }
        Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
        Path(summary_path).write_text(json.dumps(summary, indent=2))
    if broken:
        log.error("SLO gate FAILED: %s", "; ".join(broken))
        if any("p95" in b or "p99" in b for b in broken):
            load, cores = os.getloadavg()[0], os.cpu_count() or 1
            log.error(
                "client-side latency only (load average %.1f on %d cores): a busy load "
                "generator adds its own queueing; `make loadtest PROMETHEUS=<url>` also judges "
                "what the service measured (python -m loadtest.server_slo)",
                load,
                cores,
            )
        environment.process_exit_code = 1
    else:
        log.warning("SLO gate passed")
        environment.process_exit_code = 0
