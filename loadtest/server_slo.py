"""The server-side SLO gate: what the service itself measured, read from Prometheus.

A load generator on a busy machine (a CI runner that also runs a kind cluster, or a 2-core
laptop) adds its own queueing to every latency it reports. The service's histogram does not:
this gate judges the same SLO numbers (loadtest/slo.py) on /v1/predict as the server saw it.

    python -m loadtest.server_slo --prometheus http://localhost:9090 \
        --selector 'job="faultline", namespace="faultline"' --window 5m
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from loadtest import slo

PREDICT = slo.PREDICT


@dataclass(frozen=True)
class ServerFigures:
    """/v1/predict over the window, as the service measured it."""

    requests: float
    error_ratio: float
    p95_ms: float
    p99_ms: float


def queries(selector: str, window: str) -> dict[str, str]:
    """The PromQL behind each figure."""
    matchers = f"{selector}, {PREDICT}"
    buckets = f"sum by (le) (rate(http_request_duration_seconds_bucket{{{matchers}}}[{window}]))"
    total = f"sum(increase(http_requests_total{{{matchers}}}[{window}]))"
    errors = f'sum(increase(http_requests_total{{{matchers}, status=~"5.."}}[{window}]))'
    return {
        "requests": total,
        "error_ratio": f"(({errors}) or vector(0)) / {total}",
        "p95_ms": f"1000 * histogram_quantile(0.95, {buckets})",
        "p99_ms": f"1000 * histogram_quantile(0.99, {buckets})",
    }


def measure(prometheus: str, selector: str, window: str) -> ServerFigures:
    """Query each figure (NaN where Prometheus has no data)."""
    values = {}
    with httpx.Client(base_url=prometheus, timeout=10) as client:
        for name, expr in queries(selector, window).items():
            body = client.get("/api/v1/query", params={"query": expr}).json()
            if body.get("status") != "success":
                raise ValueError(f"Prometheus refused {expr}: {body.get('error')}")
            result = body["data"]["result"]
            values[name] = float(result[0]["value"][1]) if result else math.nan
    return ServerFigures(**values)


def violations(
    figures: ServerFigures,
    max_failure_ratio: float = slo.MAX_FAILURE_RATIO,
    p95_ms: float = slo.P95_MS,
    p99_ms: float = slo.P99_MS,
) -> list[str]:
    """What broke the SLO on the server side (empty when it held)."""
    if not figures.requests > 0:
        return ["the service recorded no /v1/predict requests in the window"]
    found = []
    if not figures.error_ratio <= max_failure_ratio:
        found.append(f"server 5xx ratio {figures.error_ratio:.4f} > {max_failure_ratio}")
    if not figures.p95_ms <= p95_ms:
        found.append(f"server p95 {figures.p95_ms:.1f} ms > {p95_ms} ms")
    if not figures.p99_ms <= p99_ms:
        found.append(f"server p99 {figures.p99_ms:.1f} ms > {p99_ms} ms")
    return found


def machine_load() -> str:
    """The machine's 1-minute load against its cores (a saturated load generator shows here)."""
    one, _, _ = os.getloadavg()
    cores = os.cpu_count() or 1
    busy = " (saturated)" if one >= cores else ""
    return f"load average {one:.1f} on {cores} cores{busy}"


def combined_verdict(
    server: list[str], client: dict[str, Any], max_failure_ratio: float = slo.MAX_FAILURE_RATIO
) -> tuple[bool, str]:
    """(passed, why) from the server-side gate and the client's Locust summary: the SLO is
    judged on what the service measured; client latency over the gate with a healthy server
    means the load generator or the machine was slow, which is reported, not failed."""
    if server:
        return False, "the SERVICE broke its SLO: " + "; ".join(server)
    if client.get("failure_ratio", 0.0) > max_failure_ratio:
        return False, (
            f"the CLIENT saw failures ({client['failure_ratio']:.4f}) the service did not "
            "count as 5xx: connection errors, timeouts or wrong bodies (see the Locust report)"
        )
    slow = [v for v in client.get("violations", []) if "p95" in v or "p99" in v]
    if slow:
        return True, (
            f"passed on the server side; the client saw {'; '.join(slow)}: the load "
            f"generator or the machine was the bottleneck ({machine_load()}), not the service"
        )
    return True, "passed on both sides"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL.")
    parser.add_argument("--selector", default=slo.SELECTOR, help="Label matchers.")
    parser.add_argument("--window", default="5m", help="Range to judge (the load run's length).")
    parser.add_argument("--max-failure-ratio", type=float, default=slo.MAX_FAILURE_RATIO)
    parser.add_argument("--p95-ms", type=float, default=slo.P95_MS)
    parser.add_argument("--p99-ms", type=float, default=slo.P99_MS)
    parser.add_argument(
        "--client-summary", type=Path, help="Locust's --summary-json: judge both sides together."
    )
    args = parser.parse_args()
    figures = measure(args.prometheus, args.selector, args.window)
    print(
        f"server side over {args.window}: {figures.requests:.0f} requests, "
        f"5xx ratio {figures.error_ratio:.4f} (SLO <= {args.max_failure_ratio}), "
        f"p95 {figures.p95_ms:.2f} ms (<= {args.p95_ms}), p99 {figures.p99_ms:.2f} ms "
        f"(<= {args.p99_ms})"
    )
    broken = violations(figures, args.max_failure_ratio, args.p95_ms, args.p99_ms)
    print(f"server-side SLO gate: {'FAILED: ' + '; '.join(broken) if broken else 'passed'}")
    if args.client_summary is None:
        return 1 if broken else 0
    client = json.loads(args.client_summary.read_text())
    print(
        f"client side: {client['requests']} requests, failure ratio {client['failure_ratio']:.4f}, "
        f"p95 {client['p95_ms']:.1f} ms, p99 {client['p99_ms']:.1f} ms"
    )
    passed, why = combined_verdict(broken, client, args.max_failure_ratio)
    print(f"verdict: {'PASSED' if passed else 'FAILED'}: {why}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
