"""The canary verdict without a live Prometheus: the generated checks judged on fake answers,
through a fake query function and through Prometheus's HTTP API (httpx.MockTransport)."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import pytest

from service.canary import (
    DEFINITION,
    EXIT_CODES,
    Check,
    analyze,
    default_selector,
    judge,
    load_checks,
    render_table,
)

CHECKS = load_checks()
SELECTOR = 'job="faultline", namespace="ml"'


def _edge(check: Check) -> float:
    return float(check.condition.split()[-1])


def passing(check: Check) -> float:
    return _edge(check) + (1.0 if ">" in check.condition else -1e-3)


def failing(check: Check) -> float:
    return _edge(check) - 1.0 if ">" in check.condition else _edge(check) + 1.0


def answers(**overrides: float | None) -> Callable[[str], float | None]:
    """A query function: every check passes unless overridden (by check name)."""
    by_query = {c.render(SELECTOR, "5m"): c for c in CHECKS}

    def query(expr: str) -> float | None:
        check = by_query[expr]  # only rendered checks are ever asked
        return overrides[check.name] if check.name in overrides else passing(check)

    return query


def test_the_definition_has_traffic_and_judging_checks() -> None:
    kinds = {c.kind for c in CHECKS}
    assert {"traffic", "errors", "latency", "model"} <= kinds
    assert default_selector(DEFINITION).startswith("job=")
    for check in CHECKS:
        assert "$" not in check.render(SELECTOR, "5m")
        assert check.passes(passing(check)) and not check.passes(failing(check))


def test_all_checks_pass_promotes() -> None:
    verdict, outcomes = judge(CHECKS, SELECTOR, "5m", answers())
    assert verdict == "promote" and EXIT_CODES[verdict] == 0
    assert {o.result for o in outcomes} == {"pass"}


@pytest.mark.parametrize("name", [c.name for c in CHECKS if c.kind == "traffic"])
def test_too_little_traffic_is_inconclusive_even_when_errors_fail(name: str) -> None:
    [traffic] = [c for c in CHECKS if c.name == name]
    verdict, outcomes = judge(
        CHECKS, SELECTOR, "5m", answers(**{name: failing(traffic), "error-ratio": 1.0})
    )
    assert verdict == "inconclusive" and EXIT_CODES[verdict] == 2
    assert {o.check.name for o in outcomes if o.result == "fail"} == {name, "error-ratio"}


@pytest.mark.parametrize("name", [c.name for c in CHECKS if c.kind != "traffic"])
def test_a_failing_judging_check_rolls_back(name: str) -> None:
    [check] = [c for c in CHECKS if c.name == name]
    verdict, outcomes = judge(CHECKS, SELECTOR, "5m", answers(**{name: failing(check)}))
    assert verdict == "rollback" and EXIT_CODES[verdict] == 1
    assert [o.check.name for o in outcomes if o.result == "fail"] == [name]


def test_no_data_is_inconclusive_but_a_failure_still_rolls_back() -> None:
    verdict, _ = judge(CHECKS, SELECTOR, "5m", answers(**{"input-drift": None}))
    assert verdict == "inconclusive"
    verdict, _ = judge(CHECKS, SELECTOR, "5m", answers(**{"input-drift": None, "error-ratio": 1}))
    assert verdict == "rollback"
    verdict, _ = judge(CHECKS, SELECTOR, "5m", answers(**{"canary-traffic": None}))
    assert verdict == "inconclusive"


def _prometheus(values: dict[str, str | None]) -> httpx.MockTransport:
    """Prometheus's instant-query API answering each check's query with values[name]."""
    by_query = {c.render(SELECTOR, "5m"): c.name for c in CHECKS}

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query"
        value = values.get(by_query[request.url.params["query"]], "1000")
        result = [] if value is None else [{"metric": {}, "value": [1700000000, value]}]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("nan", ["NaN", "+Inf", "-Inf"])
def test_nan_and_infinite_answers_count_as_no_data(nan: str) -> None:
    judging = {c.name: str(passing(c)) for c in CHECKS if c.kind != "traffic"}
    transport = _prometheus({**judging, "p99-latency": nan})
    verdict, outcomes = analyze("http://prom", SELECTOR, "5m", CHECKS, transport=transport)
    assert verdict == "inconclusive"
    [latency] = [o for o in outcomes if o.check.name == "p99-latency"]
    assert latency.value is None and latency.result == "no data"
    assert "NO DATA" in render_table(verdict, outcomes)


def test_over_http_a_passing_canary_is_promoted_and_an_empty_answer_is_inconclusive() -> None:
    judging = {c.name: str(passing(c)) for c in CHECKS if c.kind != "traffic"}
    verdict, _ = analyze("http://prom/", SELECTOR, "5m", CHECKS, transport=_prometheus(judging))
    assert verdict == "promote"
    empty = _prometheus({**judging, "stable-traffic": None})
    verdict, outcomes = analyze("http://prom", SELECTOR, "5m", CHECKS, transport=empty)
    assert verdict == "inconclusive"
    assert "verdict: INCONCLUSIVE (failed: stable-traffic)" in render_table(verdict, outcomes)


def test_a_refused_query_is_an_error_not_a_verdict() -> None:
    refuse = httpx.MockTransport(
        lambda _: httpx.Response(400, json={"status": "error", "error": "parse error"})
    )
    with pytest.raises(ValueError, match="parse error"):
        analyze("http://prom", SELECTOR, "5m", CHECKS, transport=refuse)


def test_an_unreadable_condition_is_refused_up_front() -> None:
    bad = Check("x", "errors", "", "up", "about 3")
    with pytest.raises(ValueError, match="unreadable condition"):
        bad.passes(0.0)
    assert not any(c.passes(math.nan) for c in CHECKS)  # NaN meets no condition
