"""The service phones nowhere: from start-up through serving, its process tree opens no
connection and sends no datagram to anything but loopback (no DNS lookup, no telemetry).

On a real cluster every pod resolved ONNX Runtime's telemetry host; the runtime now disables
telemetry before its first session, and this test (strace on the real server) catches any
library that starts talking to the outside again.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from loadtest.stack import free_port, stop, wait_until_ok
from model import features as F

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed"),
]
# connect()/sendto()/sendmsg() to an IPv4 or IPv6 address: (family, address, port)
TARGET = re.compile(
    r"sa_family=AF_INET6?, sin6?_port=htons\((\d+)\).*?inet_(?:addr|pton)\(.*?\"([^\"]+)\""
)


def _outside(line: str) -> str | None:
    """The non-loopback destination of a traced call, if any."""
    match = TARGET.search(line)
    if match is None:
        return None
    port, address = match.groups()
    loopback = address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")
    return None if loopback else f"{address}:{port}"


def test_the_service_talks_to_nothing_but_loopback(bundle_path: Path, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    trace, log = tmp_path / "strace.log", tmp_path / "service.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "FAULTLINE_MODEL_DIR": str(bundle_path.parent),
        "FAULTLINE_METRICS_PORT": str(metrics_port),
        "FAULTLINE_LOG_FORMAT": "json",
    }
    command = [
        "strace", "-f", "-qq", "-e", "trace=bind,connect,sendto,sendmsg", "-o", str(trace),
        sys.executable, "-m", "service", "serve", "--port", str(port),
    ]  # fmt: skip
    with log.open("wb") as handle:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=handle, stderr=handle)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    server = 0
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ok(f"{url}/readyz", process, log, timeout=120)
        server = int(children.read_text().split()[0])  # strace's child: the service itself
        for _ in range(50):
            assert httpx.post(f"{url}/v1/predict", json=F.example_reading()).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").status_code == 200
    finally:
        if server:  # a signal to strace would only detach it and leave the service running
            os.kill(server, signal.SIGTERM)
        stop(process)
    traced = trace.read_text().splitlines()
    assert any(f"htons({port})" in line for line in traced if "bind(" in line)  # strace saw it
    lines = [line for line in traced if "bind(" not in line]
    outside = sorted({d for line in lines if (d := _outside(line))})
    assert not outside, f"the service reached out to {outside}"
    assert not [line for line in lines if "htons(53)" in line], "a DNS lookup"


def test_the_check_sees_a_lookup() -> None:
    """The parser recognises what a resolver and a telemetry client would do."""
    dns = (
        'connect(5, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.96.0.10")}'
        ", 16) = 0"
    )
    local = (
        'connect(7, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}'
        ", 16) = 0"
    )
    v6 = (
        "connect(9, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "2603:1030::1", &sin6_addr), sin6_scope_id=0}, 28) = -1'
    )
    assert _outside(dns) == "10.96.0.10:53"
    assert _outside(local) is None
    assert _outside(v6) == "2603:1030::1:443"
