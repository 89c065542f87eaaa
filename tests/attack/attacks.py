"""Every attack of issue 12, replayed against real `faultline serve` processes on 127.0.0.1.

`make attack` (python -m tests.attack) prints one line per attack; tests/attack/test_attack.py
runs the same and checks the goal figures. Each attack is bounded in connections, requests and
time; every process started here is stopped by its own PID.

Per line: requests (or connections) sent, statuses seen by the attacker, the largest and p99
/healthz latency seen by a separate prober process, server RSS before / peak / after, and 5xx
answers (seen by clients, plus 5xx series in the server's own metrics).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from loadtest.stack import service, stop
from model import bundle as B
from model import features as F
from tests.conftest import metric_value
from training import data as D

HOST = "127.0.0.1"
API_KEY = "attack-test-key-0123456789abcdef"
# short timeouts so the run stays short; the defaults are in docs/service.md
SERVER_ENV = {
    "FAULTLINE_HEADER_TIMEOUT_SECONDS": "2",
    "FAULTLINE_BODY_TIMEOUT_SECONDS": "2",
    "FAULTLINE_DRAIN_SECONDS": "2",
    "FAULTLINE_DRAIN_IDLE_SECONDS": "1",
    "FAULTLINE_LOG_LEVEL": "warning",
}
# every method llhttp parses besides the standard ones (each created series before the fix)
ODD_METHODS = [
    *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "PURGE"),
    *("MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE"),
    *("REPORT", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "ACL", "BIND", "REBIND", "UNBIND"),
    *("TRACE", "QUERY"),
]


@dataclass
class Result:
    """One attack's figures."""

    name: str
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    healthz_max_ms: float = 0.0
    healthz_p99_ms: float = 0.0
    healthz_failures: int = 0
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_after_mb: float = 0.0
    server_5xx: float = 0.0
    notes: list[str] = field(default_factory=list)
    ok: bool = True

    @property
    def client_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))

    def line(self) -> str:
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{'PASS' if self.ok else 'FAIL'} {self.name:<22} sent={self.sent:<5} "
            f"statuses[{statuses}] healthz max={self.healthz_max_ms:.1f}ms "
            f"p99={self.healthz_p99_ms:.1f}ms fail={self.healthz_failures} "
            f"rss={self.rss_before_mb:.0f}->{self.rss_after_mb:.0f}MB "
            f"(peak {self.rss_peak_mb:.0f}) 5xx={self.client_5xx}+{self.server_5xx:.0f}"
            + (f" | {'; '.join(self.notes)}" if self.notes else "")
        )


# --- processes ---------------------------------------------------------------------------------
@dataclass
class Server:
    """A running `faultline serve`."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def metrics(self) -> str:
        return httpx.get(f"http://{HOST}:{self.metrics_port}/metrics", timeout=10).text

    def rss_mb(self) -> float:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return kb / 1024


@contextlib.contextmanager
def server(model_dir: Path, log: Path, ready: bool = True, **env: str) -> Iterator[Server]:
    """`faultline serve` on free ports; waits for /readyz (or only /healthz if not ready)."""
    with service(
        model_dir, log, ready="/readyz" if ready else "/healthz", **{**SERVER_ENV, **env}
    ) as running:
        yield Server(
            running.process,
            int(running.url.rsplit(":", 1)[1]),
            int(running.metrics_url.rsplit(":", 1)[1]),
            log,
        )


@contextlib.contextmanager
def measured(name: str, target: Server, work: Path) -> Iterator[Result]:
    """Run an attack with a /healthz prober process, RSS sampling and a 5xx count around it."""
    result = Result(name, rss_before_mb=target.rss_mb())
    before = target.metrics()
    out = work / f"probe-{name}.json"
    prober_py = str(Path(__file__).with_name("prober.py"))
    prober = subprocess.Popen([sys.executable, prober_py, HOST, str(target.port), str(out)])
    peak = [result.rss_before_mb]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.05):
            peak[0] = max(peak[0], target.rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(0.1)  # the prober's first answers, before the attack
    try:
        yield result
    finally:
        time.sleep(0.2)
        prober.send_signal(signal.SIGTERM)
        prober.wait(timeout=10)
        sampling.set()
        sampler.join()
        probe: dict[str, Any] = {"latencies": [], "failures": 1}
        if out.exists():
            probe = json.loads(out.read_text())
        latencies = sorted(probe["latencies"]) or [0.0]
        result.healthz_max_ms = latencies[-1] * 1000
        result.healthz_p99_ms = latencies[int(0.99 * (len(latencies) - 1))] * 1000
        result.healthz_failures = probe["failures"]
        time.sleep(0.3)
        result.rss_after_mb = target.rss_mb()
        result.rss_peak_mb = max(peak[0], result.rss_after_mb)
        after = target.metrics()
        result.server_5xx = sum(
            metric_value(after, "http_requests_total", status=str(s))
            - metric_value(before, "http_requests_total", status=str(s))
            for s in range(500, 600)
        )


# --- clients -----------------------------------------------------------------------------------
def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection: (status, headers, body)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def hammer(
    port: int, clients: int, seconds: float, body: bytes, headers: dict[str, str]
) -> tuple[int, Counter[str]]:
    """`clients` keep-alive connections POSTing `body` to /v1/predict for `seconds`."""
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    headers = {"content-type": "application/json", **headers}

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        while time.monotonic() < deadline:
            try:
                connection.request("POST", "/v1/predict", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = str(response.status)
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                connection.close()
            with lock:
                statuses[status] += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(statuses.values()), statuses


def _answer(sock: socket.socket, timeout: float) -> str:
    """The status code of what the server wrote before closing (or what went wrong)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return "no-answer"
    except OSError as exc:
        if not data:
            return type(exc).__name__
    if not data:
        return "closed"
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "garbage"
    if b"application/json" not in data and status != "closed":
        status += "-not-json"
    return status


def many_sockets(port: int, count: int, opening: bytes) -> list[socket.socket]:
    """Open `count` connections, each having sent `opening` and nothing more."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=10)
        sock.sendall(opening)
        sockets.append(sock)
    return sockets


def _readings(n: int, seed: int) -> list[dict[str, Any]]:
    frame = D.generate(n, seed)[list(F.FEATURE_NAMES)]
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def auth(headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"x-api-key": API_KEY, **(headers or {})}


def series(text: str) -> set[str]:
    """The sample lines' names and labels (one per series)."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and line[0] != "#"}


# --- attacks on one running server -------------------------------------------------------------
def invalid_payloads(target: Server, work: Path, max_body: int, seconds: float) -> Result:
    """Finding 1: 4 clients sending the worst invalid bodies that fit under the body limit."""
    from service.errors import InvalidInputError
    from service.routes import load_json

    reading = F.example_reading()

    def fits(body: bytes) -> bool:
        return len(body) <= max_body - 1024

    def parsed(body: bytes) -> bool:  # passes the structure checks made before parsing
        try:
            load_json(body, 1000)
        except InvalidInputError:
            return False
        return True

    def widest(make: Callable[[int], bytes], accept: Callable[[bytes], bool]) -> bytes:
        n = 1
        while accept(make(n + 1)):
            n += 1
        return make(n)

    def unknown_keys(keys: int, name: int = 2) -> bytes:
        extra = {f"k{j:0{name}d}": 0 for j in range(keys)}
        return orjson.dumps({"instances": [{**reading, **extra}] * 1000})

    # 1,000 readings with as many unknown keys as fit in the limit (refused before parsing), and
    # with as many as still get parsed and diagnosed, their names as long as the limit allows
    unknown = widest(unknown_keys, fits)
    keys = len(orjson.loads(unknown)["instances"][0]) - len(reading)
    parsed_keys = widest(unknown_keys, parsed).count(b'"k') // 1000
    wide = widest(lambda name: unknown_keys(parsed_keys, name), fits)
    single = orjson.dumps({**reading, **{f"x{j}": 0 for j in range((max_body - 1024) // 12)}})
    nested = b'{"instances": [' + b",".join([b"[[0]]"] * ((max_body - 1024) // 6)) + b"]}"
    with measured("invalid-payloads", target, work) as result:
        results: list[tuple[int, Counter[str]]] = []

        def clients(body: bytes, count: int) -> None:
            results.append(hammer(target.port, count, seconds, body, auth()))

        shapes = ((unknown, 1), (wide, 1), (single, 1), (nested, 1))
        threads = [threading.Thread(target=clients, args=shape) for shape in shapes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for sent, statuses in results:
            result.sent += sent
            result.statuses += statuses
    result.notes.append(
        f"1000 readings x{keys} unknown keys ({len(unknown) // 1024} KiB), x{parsed_keys} long "
        f"unknown keys ({len(wide) // 1024} KiB), one reading with {len(single) // 1024} KiB of "
        f"keys, {len(nested) // 1024} KiB of nested lists"
    )
    result.ok = set(result.statuses) == {"422"} and result.healthz_p99_ms < 100
    return result


def largest_batches(target: Server, work: Path, max_batch: int, seconds: float) -> Result:
    """Finding 4: 16 clients sending the largest accepted batch."""
    body = orjson.dumps({"instances": _readings(max_batch, 7)})
    with measured("largest-batches", target, work) as result:
        result.sent, result.statuses = hammer(target.port, 16, seconds, body, auth())
    result.notes.append(f"{max_batch} readings, {len(body) // 1024} KiB")
    result.ok = set(result.statuses) == {"200"} and result.healthz_p99_ms < 100
    return result


def huge_headers(target: Server, work: Path) -> Result:
    """Finding 2: 30 connections each sending a 10 MB header that never ends; 30 with 500
    header fields."""
    chunk = b"a" * 65536
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def endless() -> None:
        sock = socket.create_connection((HOST, target.port), timeout=10)
        sent = 0
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while sent < 10 * 1_048_576:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server refused and closed: expected
        status = _answer(sock, 5)
        sock.close()
        with lock:
            statuses[status] += 1

    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(500)
    )

    def fields() -> None:
        sock = socket.create_connection((HOST, target.port), timeout=10)
        with contextlib.suppress(OSError):
            sock.sendall(many + b"\r\n")
        status = _answer(sock, 5)
        sock.close()
        with lock:
            statuses[status] += 1

    with measured("huge-headers", target, work) as result:
        threads = [threading.Thread(target=endless) for _ in range(30)]
        threads += [threading.Thread(target=fields) for _ in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result.sent, result.statuses = 60, statuses
    result.ok = (
        set(statuses) == {"431"}
        and result.rss_peak_mb < 250
        and result.rss_after_mb <= result.rss_before_mb * 1.1
    )
    return result


def slow_requests(target: Server, work: Path, count: int = 300) -> Result:
    """Finding 2: `count` connections with headers that never end, `count` with half a body;
    all must be answered 408 and closed after the (2 s here) timeouts."""
    half = orjson.dumps({"instances": _readings(20, 3)})
    with measured("slow-requests", target, work) as result:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        slow_heads = many_sockets(target.port, count, head)
        post = (
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"x-api-key: " + API_KEY.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(half)
        )
        slow_bodies = many_sockets(target.port, count, post + half[: len(half) // 2])
        started = time.monotonic()
        statuses: Counter[str] = Counter()
        for sock in slow_heads + slow_bodies:
            statuses[_answer(sock, max(0.5, 6 - (time.monotonic() - started)))] += 1
            sock.close()
        result.sent, result.statuses = 2 * count, statuses
        waited = time.monotonic() - started
    result.notes.append(f"all answered within {waited:.1f} s")
    result.ok = set(statuses) == {"408"}
    return result


def disconnects(target: Server, work: Path, count: int = 50) -> Result:
    """Finding 3: clients that send half a body and close: 499 in metrics, not 500."""
    body = orjson.dumps(F.example_reading())
    before = target.metrics()
    with measured("client-disconnects", target, work) as result:
        post = (
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"x-api-key: " + API_KEY.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        for sock in many_sockets(target.port, count, post + body[:20]):
            sock.close()
        result.sent = count
        time.sleep(0.5)
    after = target.metrics()

    def delta(name: str, **labels: str) -> float:
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    recorded = delta("http_requests_total", handler="/v1/predict", status="499")
    counted = delta("faultline_client_disconnects_total")
    result.statuses = Counter({"499 (server-side)": int(recorded)})
    result.notes.append(f"faultline_client_disconnects_total +{counted:.0f}")
    result.ok = recorded == count == counted and result.server_5xx == 0
    return result


def odd_methods_and_paths(target: Server, work: Path) -> Result:
    """Finding 10: unusual methods, random paths and field names create no series."""
    rng = random.Random(10)
    headers = auth({"content-type": "application/json"})
    request(target.port, "POST", "/v1/predict", b'{"f": 1}', headers)  # the bounded series
    before = series(target.metrics())
    with measured("odd-methods-paths", target, work) as result:
        statuses: Counter[str] = Counter()
        for method in ODD_METHODS:
            for path in ("/v1/model/", "/v1/model", "/v1/predict", "/healthz", "/nope"):
                status, _, _ = request(target.port, method, path, headers=auth())
                statuses[str(status)] += 1
        for _ in range(300):
            path = "/" + "".join(rng.choices("abcdefghij/", k=rng.randint(1, 30)))
            status, _, _ = request(target.port, "GET", path, headers=auth())
            statuses[str(status)] += 1
        for _ in range(100):
            body = orjson.dumps({f"f{rng.randint(0, 10**9)}": 1})
            status, _, _ = request(target.port, "POST", "/v1/predict", body, headers)
            statuses[str(status)] += 1
        result.sent, result.statuses = sum(statuses.values()), statuses
    new = sorted(s for s in series(target.metrics()) - before if s.startswith("http_"))
    new += sorted(s for s in series(target.metrics()) - before if "field=" in s)
    result.notes.append(f"new series {len(new)}" + (f": {new[:3]}" if new else ""))
    result.ok = not new and result.client_5xx == 0
    return result


def drift_flooding(target: Server, work: Path, window: int, share: float) -> Result:
    """Finding 9: two extreme 1,000-reading requests may fill only `share` of the window each."""
    extreme = {
        **F.example_reading(),
        F.TORQUE.name: F.TORQUE.maximum,
        F.AIR_TEMPERATURE.name: F.AIR_TEMPERATURE.maximum,
    }
    body = orjson.dumps({"instances": [extreme] * 1000})
    invalid = orjson.dumps({"instances": [{**extreme, F.TORQUE.name: -1.0}] * 1000})
    before = target.metrics()
    with measured("drift-flooding", target, work) as result:
        headers = auth({"content-type": "application/json"})
        for payload in (body, body, invalid, invalid):
            status, _, _ = request(target.port, "POST", "/v1/predict", payload, headers)
            result.statuses[str(status)] += 1
        result.sent = 4
    after = target.metrics()
    skipped = metric_value(after, "faultline_drift_readings_skipped_total") - metric_value(
        before, "faultline_drift_readings_skipped_total"
    )
    kept = 2 * 1000 - skipped
    result.notes.append(f"kept {kept:.0f} of 2000 readings = {kept / window:.0%} of the window")
    result.ok = kept <= 2 * max(1, int(share * window)) and result.statuses == Counter(
        {"200": 2, "422": 2}
    )
    return result


def exposure(target: Server, work: Path) -> Result:
    """Finding 8: what the API port reveals; auth on /v1/*; no Host-built redirects."""
    with measured("exposure-auth", target, work) as result:
        checks: dict[str, bool] = {}
        status, _, _ = request(target.port, "GET", "/metrics")
        checks["/metrics 404 on API port"] = status == 404
        for path in ("/docs", "/redoc", "/openapi.json"):
            status, _, _ = request(target.port, "GET", path)
            checks[f"{path} 404"] = status == 404
        status, headers, _ = request(
            target.port, "GET", "/v1/model/", headers=auth({"host": "evil.example"})
        )
        checks["no redirect from Host"] = status == 404 and "location" not in {
            k.lower() for k in headers
        }
        statuses: Counter[str] = Counter()
        for i in range(200):
            key = {} if i % 2 else {"authorization": f"Bearer wrong-{i:032d}"}
            status, headers, body = request(target.port, "GET", "/v1/model", headers=key)
            statuses[str(status)] += 1
            if i < 2:
                checks[f"401 body + challenge ({i})"] = json.loads(body)["error"][
                    "type"
                ] == "unauthorized" and "www-authenticate" in {k.lower() for k in headers}
        status, _, body = request(target.port, "GET", "/v1/model", headers=auth())
        statuses[str(status)] += 1
        checks["/v1/model without provenance"] = status == 200 and "git_commit" not in json.loads(
            body
        )
        status, _, _ = request(target.port, "GET", "/readyz")
        checks["probes need no key"] = status == 200
        result.sent, result.statuses = 200 + 7, statuses
    failures = metric_value(target.metrics(), "faultline_auth_failures_total")
    failed = [name for name, ok in checks.items() if not ok]
    result.notes.append(f"auth failures counted {failures:.0f}")
    result.notes.append("all checks hold" if not failed else f"failed: {failed}")
    result.ok = not failed and failures >= 200
    return result


# --- attacks that need their own server ---------------------------------------------------------
def malformed_bundles(bundle: Path, work: Path) -> Result:
    """Findings 6 and 7: each malformed bundle keeps the process up, not ready, with a reason."""
    cases = make_malformed_bundles(bundle, work / "bundles")
    result = Result("malformed-bundles")
    lock = threading.Lock()

    def check(name: str) -> list[tuple[str, bool, str]]:
        path, env = cases[name]
        with server(path, work / f"bundle-{name}.log", ready=False, **env) as target:
            rss = target.rss_mb()
            status, _, body = request(target.port, "GET", "/readyz")
            reason = json.loads(body)["error"]["message"] if status == 503 else ""
            alive = request(target.port, "GET", "/healthz")[0] == 200
            exit_code = stop(target.process)
        with lock:
            result.rss_before_mb = max(result.rss_before_mb, rss)
            result.statuses[f"readyz:{status}"] += 1
        shown = reason.split(str(path), 1)[-1].lstrip(":/ ")[:70]
        outcome = [(name, status == 503 and alive and bool(reason), shown)]
        return outcome + ([(f"{name} exit", False, str(exit_code))] if exit_code else [])

    with ThreadPoolExecutor(3) as pool:  # three start-ups at a time
        outcomes = [o for found in pool.map(check, cases) for o in found]
    result.sent = len(cases)
    result.rss_peak_mb = result.rss_after_mb = result.rss_before_mb
    result.notes += [f"{name}: {reason!r}" for name, _, reason in outcomes]
    result.ok = all(ok for _, ok, _ in outcomes)
    return result


def make_malformed_bundles(bundle: Path, into: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """Copies of a good bundle, each broken one way, with a manifest that matches again."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from skops import io as skops_io

    def copy(name: str, edit: Callable[[Path], object]) -> Path:
        target = into / name / bundle.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(bundle, target)
        edit(target)
        files = {p.name: B.sha256_file(p) for p in target.iterdir() if p.name != B.MANIFEST_FILE}
        manifest = {"algorithm": "sha256", "files": files}
        (target / B.MANIFEST_FILE).write_text(json.dumps(manifest))
        return target

    def metadata(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
        def apply(path: Path) -> None:
            meta = json.loads((path / B.METADATA_FILE).read_text())
            edit(meta)
            (path / B.METADATA_FILE).write_text(json.dumps(meta))

        return apply

    def serving_outside(path: Path) -> None:
        spec = json.loads((path / B.SERVING_FILE).read_text())
        spec["estimator"]["file"] = str(path / "model.onnx")  # absolute
        (path / B.SERVING_FILE).write_text(json.dumps(spec))

    def untrusted(path: Path) -> None:
        malicious = make_pipeline(FunctionTransformer(func=os.system))
        (path / B.MODEL_FILE).write_bytes(skops_io.dumps(malicious))

    def corrupt(path: Path) -> None:
        (path / B.MODEL_FILE).write_bytes(b"PK\x03\x04 not really a zip file")

    return {
        "metadata-not-json": (
            copy("metadata-not-json", lambda p: (p / B.METADATA_FILE).write_text("{nope")),
            {},
        ),
        "metadata-no-version": (copy("no-version", metadata(lambda m: m.pop("version"))), {}),
        "reference-empty": (
            copy("reference-empty", lambda p: (p / B.REFERENCE_FILE).write_text("{}")),
            {},
        ),
        "skops-corrupt-slow-path": (
            copy("skops-corrupt", corrupt),
            {"FAULTLINE_SERVING_FORM": "false"},
        ),
        "serving-file-absolute": (copy("serving-absolute", serving_outside), {}),
        "untrusted-skops-fast-path": (copy("untrusted", untrusted), {}),
    }


def drain(bundle: Path, work: Path, runs: int = 3, connections: int = 8) -> Result:
    """Finding 5: SIGTERM while 8 keep-alive clients keep sending; none of their requests may
    be lost. A slow body still open at the drain deadline gets the JSON error body."""
    result = Result("sigterm-drain")
    body = orjson.dumps(F.example_reading())
    request_bytes = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body
    lost = 0
    slow_answers: list[str] = []
    exits = []
    for run in range(runs):
        # a slow body must outlive the drain: body timeout above the drain time
        log = work / f"drain-{run}.log"
        with server(bundle, log, FAULTLINE_BODY_TIMEOUT_SECONDS="30") as target:
            result.rss_before_mb = max(result.rss_before_mb, target.rss_mb())
            counts: list[tuple[int, int, Counter[str]]] = []
            lock = threading.Lock()

            def client(counts: list[Any] = counts, lock: threading.Lock = lock) -> None:
                sock = socket.create_connection((HOST, target.port), timeout=10)
                answered, unanswered, statuses = 0, 0, Counter[str]()
                while True:
                    try:
                        sock.sendall(request_bytes)
                    except OSError:
                        unanswered += 1
                        break
                    try:
                        # one request in flight: nothing of a next answer is read ahead
                        response = http.client.HTTPResponse(sock)
                        response.begin()
                        response.read()
                    except (OSError, http.client.HTTPException):
                        unanswered += 1
                        break
                    answered += 1
                    statuses[str(response.status)] += 1
                    if response.will_close:
                        break
                    time.sleep(random.random() * 0.005)
                sock.close()
                with lock:
                    counts.append((answered, unanswered, statuses))

            slow = socket.create_connection((HOST, target.port), timeout=10)
            slow.sendall(request_bytes[: len(request_bytes) - len(body) // 2])
            threads = [threading.Thread(target=client) for _ in range(connections)]
            for thread in threads:
                thread.start()
            time.sleep(1.0)
            target.process.send_signal(signal.SIGTERM)
            slow_answers.append(_answer(slow, 10))
            slow.close()
            for thread in threads:
                thread.join(timeout=30)
            exits.append(target.process.wait(timeout=30))
        for answered, unanswered, statuses in counts:
            result.sent += answered + unanswered
            lost += unanswered
            result.statuses += statuses
    result.rss_peak_mb = result.rss_after_mb = result.rss_before_mb
    result.notes.append(f"lost {lost} in {runs} runs x {connections} connections")
    result.notes.append(f"slow body at the deadline got {slow_answers}; exit codes {exits}")
    result.ok = lost == 0 and slow_answers == ["408"] * runs and exits == [0] * runs
    return result


# --- the whole run -------------------------------------------------------------------------------
def run_all(
    bundle: Path, work: Path, seconds: float = 5.0, echo: Callable[[str], None] = print
) -> list[Result]:
    """Every attack; prints (echo) one line per attack as it finishes."""
    from service.config import Settings

    defaults = Settings()
    work.mkdir(parents=True, exist_ok=True)
    keys = work / "api-keys"
    keys.write_text(f"# one key per line\n{API_KEY}\n")
    results: list[Result] = []

    def report(result: Result) -> None:
        results.append(result)
        echo(result.line())

    with server(
        bundle,
        work / "server.log",
        FAULTLINE_API_KEYS_FILE=str(keys),
    ) as target:
        report(invalid_payloads(target, work, defaults.max_body_bytes, seconds))
        report(largest_batches(target, work, defaults.max_batch, seconds))
        report(huge_headers(target, work))
        report(slow_requests(target, work))
        report(disconnects(target, work))
        share = defaults.drift_max_request_share
        report(drift_flooding(target, work, defaults.drift_window, share))
        report(exposure(target, work))
        report(odd_methods_and_paths(target, work))
        exit_code = stop(target.process)
        if exit_code != 0:
            echo(f"FAIL main server exited {exit_code}")
            results.append(Result("main-server-exit", ok=False))
    report(malformed_bundles(bundle, work))
    report(drain(bundle, work))
    return results
