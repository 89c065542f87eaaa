"""Issue 12 against the real server process (findings 2, 3, 5, 8): socket-level attacks.

Loopback only, bounded in connections and time; every process is stopped by its PID.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.attack.attacks import (
    API_KEY,
    Server,
    disconnects,
    drain,
    huge_headers,
    server,
    slow_requests,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target(bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("hostile")
    keys = work / "api-keys"
    keys.write_text(API_KEY + "\n")
    log = work / "server.log"
    keyed = str(keys)
    with server(
        bundle_path, log, FAULTLINE_API_KEYS_FILE=keyed, FAULTLINE_LOG_LEVEL="info"
    ) as running:
        yield running


def test_endless_and_numerous_headers_get_431_and_memory_returns(
    target: Server, tmp_path: Path
) -> None:
    result = huge_headers(target, tmp_path)  # 30 x 10 MB header, 30 x 500 fields
    assert result.statuses == Counter({"431": 60}), result.line()
    assert result.rss_peak_mb < 250, result.line()
    assert result.rss_after_mb <= result.rss_before_mb * 1.1, result.line()


def test_incomplete_headers_and_bodies_time_out_with_408(target: Server, tmp_path: Path) -> None:
    result = slow_requests(target, tmp_path, count=100)  # timeouts are 2 s in this server
    assert result.statuses == Counter({"408": 200}), result.line()
    assert "faultline_http_protocol_rejections_total" in target.metrics()


def test_a_client_gone_mid_body_is_a_499_not_a_500(target: Server, tmp_path: Path) -> None:
    result = disconnects(target, tmp_path, count=20)
    assert result.ok, result.line()
    lines = [json.loads(line) for line in target.log.read_text().splitlines() if line[:1] == "{"]
    statuses = Counter(e["status"] for e in lines if e.get("event") == "request")
    assert statuses[499] >= 20 and not any(s >= 500 for s in statuses), statuses


def test_metrics_have_their_own_port(target: Server) -> None:
    assert httpx.get(f"{target.url}/metrics").status_code == 404
    assert "faultline_model_ready" in target.metrics()


def test_sigterm_loses_no_request_on_keep_alive_connections(
    bundle_path: Path, tmp_path: Path
) -> None:
    result = drain(bundle_path, tmp_path, runs=1, connections=8)
    assert result.ok, result.line()
