"""Load-test verdicts say which side was slow: the server-side gate decides, a slow client on a
healthy server is reported with the machine's load, client-only failures still fail."""

from __future__ import annotations

import json
import math
from pathlib import Path

from loadtest import server_slo
from loadtest.server_slo import ServerFigures, combined_verdict, violations

HEALTHY = ServerFigures(requests=6000, error_ratio=0.0, p95_ms=6.9, p99_ms=9.0)
CLIENT_SLOW = {"failure_ratio": 0.0, "violations": ["p95 16.0 ms > 10.0 ms"]}


def test_a_slow_client_on_a_healthy_server_passes_and_says_why() -> None:
    passed, why = combined_verdict(violations(HEALTHY), CLIENT_SLOW)
    assert passed
    assert "client saw p95 16.0 ms > 10.0 ms" in why and "load average" in why


def test_a_slow_server_fails_whatever_the_client_saw() -> None:
    slow = ServerFigures(requests=6000, error_ratio=0.0, p95_ms=12.0, p99_ms=30.0)
    broken = violations(slow)
    assert broken == ["server p95 12.0 ms > 10.0 ms", "server p99 30.0 ms > 25.0 ms"]
    passed, why = combined_verdict(broken, {"failure_ratio": 0.0, "violations": []})
    assert not passed and why.startswith("the SERVICE broke its SLO")


def test_failures_only_the_client_saw_still_fail() -> None:
    passed, why = combined_verdict([], {"failure_ratio": 0.02, "violations": []})
    assert not passed and "CLIENT saw failures" in why


def test_no_data_is_never_a_pass() -> None:
    empty = ServerFigures(requests=math.nan, error_ratio=math.nan, p95_ms=math.nan, p99_ms=math.nan)
    assert violations(empty) == ["the service recorded no /v1/predict requests in the window"]
    nan_latency = ServerFigures(requests=10, error_ratio=0.0, p95_ms=math.nan, p99_ms=math.nan)
    assert len(violations(nan_latency)) == 2


def test_queries_select_the_predict_handler_and_the_window() -> None:
    for expr in server_slo.queries('job="x"', "90s").values():
        assert 'job="x", handler="/v1/predict"' in expr and "[90s]" in expr


def _figure(scenario: str, rps: float, p99: float, readings: float | None = None) -> dict:
    return {
        "scenario": scenario,
        "requests_per_s": rps,
        "readings_per_s": readings or rps,
        "p50_ms": p99 / 3,
        "p99_ms": p99,
        "errors": 0,
    }


def test_bench_prints_a_verdict_per_row_and_flags_a_disturbed_floor() -> None:
    from loadtest.bench import render

    run = {
        "startup_s": 1.7,
        "rss_mb": 110.0,
        "figures": [
            _figure("floor: bare ASGI, c=8", 31_000, 0.7),
            _figure("single row, c=8", 4_800, 2.7),
            _figure("single row, c=32", 4_200, 8.5),
        ],
    }
    text = render(run)
    lines = text.splitlines()
    assert lines[1].endswith("quiet") and lines[2].endswith("met")
    assert lines[3].endswith("MISSED")  # 4,200 < 5,000 req/s
    assert "start-up to ready 1.7 s (target <3: met)" in text and "WARNING" not in text
    run["figures"][0] = _figure("floor: bare ASGI, c=8", 9_000, 670.0)
    text = render(run)
    assert "DISTURBED" in text and "WARNING: the bare-ASGI floor was disturbed" in text


def test_bench_compare_matches_scenarios_by_name(tmp_path: Path) -> None:
    """A scenario only the newer run has (the OIP one) is listed as new; zip() over the two
    lists raised on it before."""
    from typer.testing import CliRunner

    from loadtest.bench import app

    def run(scenarios: list[tuple[str, float]]) -> dict[str, object]:
        figures = [{"scenario": n, "requests_per_s": r, "p99_ms": 2.0} for n, r in scenarios]
        return {"figures": figures, "startup_s": 1.0, "rss_mb": 100.0}

    before, after = tmp_path / "a.json", tmp_path / "b.json"
    before.write_text(json.dumps(run([("single row, c=8", 1000.0), ("batch", 10.0)])))
    after.write_text(
        json.dumps(run([("single row, c=8", 1100.0), ("OIP", 900.0), ("batch", 12.0)]))
    )
    result = CliRunner().invoke(app, ["--compare", str(before), str(after)])
    assert result.exit_code == 0, result.output
    assert "single row, c=8" in result.output and "req/s x1.10" in result.output
    assert "OIP" in result.output and "(new: 900 req/s)" in result.output
    assert "req/s x1.20" in result.output  # batch, matched past the new row
