"""Start the local stack as real processes: Faultline services and a Prometheus scraping them.

Used by `make demo`, the live-Prometheus and canary tests. Everything binds to 127.0.0.1 on
free ports, and every process is stopped by its own PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
# API URL -> metrics URL of every service started here: /metrics has its own port, and callers
# hand prometheus() the API URLs they know
METRICS_URLS: dict[str, str] = {}


def locust_command(url: str, out: Path, name: str, **options: object) -> list[str]:
    """`python -m locust` with the project's locust.conf against `url`; CSV and HTML reports
    go to out/<name>*; options become flags (peak_users=4 -> --peak-users 4)."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "--config",
        "loadtest/locust.conf",
        "-H",
        url,
        "--csv",
        str(out / name),
        "--html",
        str(out / f"{name}.html"),
    ]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    return command


def free_port() -> int:
    """A currently free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ok(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> float:
    """Poll `url` until it answers 200; seconds it took. Fails early if the process exits."""
    started = time.monotonic()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"process exited during start-up:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{url} not ready in {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, wait, then SIGKILL if needed; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


@dataclass
class Service:
    """A running `faultline serve` process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    startup_s: float
    metrics_url: str = ""  # http://127.0.0.1:<FAULTLINE_METRICS_PORT> (/metrics)


@contextmanager
def service(
    model_dir: Path, log: Path, workers: int = 1, ready: str = "/readyz", **env: str
) -> Iterator[Service]:
    """Run the real service on a free port (metrics on another) until the block ends; the block
    starts once `ready` answers 200 (`/healthz` for a service that must stay not ready)."""
    port, metrics_port = free_port(), free_port()
    while metrics_port == port:
        metrics_port = free_port()
    environment = {
        **os.environ,
        "FAULTLINE_MODEL_DIR": str(model_dir),
        "FAULTLINE_LOG_FORMAT": "json",
        "FAULTLINE_METRICS_PORT": str(metrics_port),
        **env,
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    metrics_url = f"http://127.0.0.1:{environment['FAULTLINE_METRICS_PORT']}"
    METRICS_URLS[url] = metrics_url
    try:
        startup = wait_until_ok(f"{url}{ready}", process, log)
        yield Service(url, process, log, startup, metrics_url)
    finally:
        stop(process)
        METRICS_URLS.pop(url, None)


class Prometheus:
    """A running Prometheus and a tiny client for its HTTP API."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], workdir: Path) -> None:
        self.url = url
        self.process = process
        self.workdir = workdir

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (raises on a PromQL error)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(f"query failed: {expr}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it returns nothing."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alerts(self) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts."""
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts

    def wait_for(self, expr: str, predicate: Any, timeout: float = 30) -> float | None:
        """Poll `expr` until predicate(value) holds; the last value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.value(expr)
            if value is not None and predicate(value):
                return value
            time.sleep(0.5)
        raise TimeoutError(f"{expr} never satisfied the condition (last value {value})")


def write_config(
    workdir: Path, targets: list[tuple[str, dict[str, str]]], interval_s: float
) -> Path:
    """prometheus.yml from the project's config, with fast intervals and the given targets
    (a service's API URL stands for its metrics URL)."""
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    interval = f"{round(interval_s * 1000)}ms"  # Prometheus durations take no decimals
    config["global"] = {
        "scrape_interval": interval,
        "evaluation_interval": interval,
    }
    config["rule_files"] = [str(p) for p in RULES]
    targets_file = workdir / "targets.json"
    targets_file.write_text(
        json.dumps(
            [
                {"targets": [METRICS_URLS.get(url, url).removeprefix("http://")], "labels": labels}
                for url, labels in targets
            ]
        )
    )
    config["scrape_configs"][0]["file_sd_configs"] = [
        {"files": [str(targets_file)], "refresh_interval": "1s"}
    ]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def prometheus(
    workdir: Path, targets: list[tuple[str, dict[str, str]]], interval_s: float = 1.0
) -> Iterator[Prometheus]:
    """Run Prometheus (binary on PATH) with the project's rules until the block ends."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise FileNotFoundError("prometheus is not on PATH (Debian: apt-get install prometheus)")
    workdir = workdir.resolve()  # file_sd paths resolve against the config file's folder
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir, targets, interval_s)
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={workdir / 'data'}",
                "--log.level=warn",
                "--web.enable-lifecycle",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{url}/-/ready", process, log)
        yield Prometheus(url, process, workdir)
    finally:
        stop(process)
