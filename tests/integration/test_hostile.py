"""Issue 12, in process: what a hostile client sends costs bounded work, moves no gauge it
should not, creates no series, and reaches nothing it should not (findings 1, 4, 6-10).

The attacks that need a real socket (headers, timeouts, disconnects, SIGTERM) are in
test_hostile_server.py; `make attack` replays all of them with figures.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from model import bundle as B
from model import features as F
from service.config import Settings
from service.main import create_app
from service.routes import parse_readings, router
from tests.conftest import metric_value
from tests.integration.helpers import scrape

READING = F.example_reading()
KEY = "a-long-enough-test-key-0123456789"


def _best_ms(action: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best * 1000


# --- finding 1: bounded work per invalid request ------------------------------------------------
def _invalid(client: TestClient, body: bytes) -> Any:
    return client.post("/v1/predict", content=body, headers={"content-type": "application/json"})


def test_many_unknown_keys_cost_about_as_much_as_a_valid_batch(client: TestClient) -> None:
    state = client.app.state.faultline  # type: ignore[attr-defined]
    unknown = {f"k{j}": 0 for j in range(6)}  # as many as still get per-reading details
    body = orjson.dumps({"instances": [{**READING, **unknown}] * 1000})
    valid = orjson.dumps({"instances": [READING] * 1000})

    def refused() -> None:
        with pytest.raises(Exception, match="invalid value"):
            parse_readings(body, state)

    invalid_ms = _best_ms(refused)
    valid_ms = _best_ms(lambda: parse_readings(valid, state))
    assert invalid_ms < max(10 * valid_ms, 40), (invalid_ms, valid_ms)
    answer = _invalid(client, body)
    assert answer.status_code == 422
    details = answer.json()["error"]["details"]
    assert len(details) == 50
    assert {d["reason"] for d in details} == {"unknown_field"}
    assert answer.json()["error"]["message"].startswith("50+ invalid value(s)")


@pytest.mark.parametrize(
    "payload",
    [
        {"instances": [{**READING, **{f"k{j}": 0 for j in range(40)}}] * 1000},
        {**READING, **{f"x{j}": 0 for j in range(40_000)}},
        {"instances": [1] * 200_000},
    ],
    ids=["40-unknown-keys-per-reading", "one-reading-40k-keys", "200k-numbers"],
)
def test_far_too_many_keys_or_values_are_refused_before_parsing(
    client: TestClient, payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing 40,000 keys holds the loop ~10 ms; counting ':' and ',' ~0.3 ms."""
    body = orjson.dumps(payload)
    state = client.app.state.faultline  # type: ignore[attr-defined]
    assert len(body) < state.settings.max_body_bytes

    def never(*args: Any) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(orjson, "loads", never)
    answer = _invalid(client, body)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["reason"] == "batch_too_large"
    assert "keys and values" in answer.json()["error"]["message"]


def test_every_reading_wrong_still_stops_at_the_cap(client: TestClient) -> None:
    wrong = {k: ("Z" if k == F.PRODUCT_TYPE.name else -1e9) for k in READING}
    answer = client.post("/v1/predict", json={"instances": [wrong] * 1000})
    assert answer.status_code == 422
    details = answer.json()["error"]["details"]
    assert len(details) == 50 and details[0]["loc"][:2] == ["instances", "0"]
    last = client.post("/v1/predict", json={"instances": [READING] * 999 + [wrong]})
    assert last.json()["error"]["details"][0]["loc"][:2] == ["instances", "999"]


# --- finding 4: probes on the event loop, limits that cannot stall it ---------------------------
def test_probes_and_model_metadata_run_on_the_event_loop() -> None:
    endpoints = {getattr(r, "path", ""): getattr(r, "endpoint", None) for r in router.routes}
    for path in ("/healthz", "/readyz", "/v1/model"):
        assert inspect.iscoroutinefunction(endpoints[path]), f"{path} would use the thread pool"


def test_large_requests_take_turns_on_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 concurrent 1,000-reading requests: no loop iteration runs more than one CPU step
    (parse, validate, convert, model call) of a large request, so a probe arriving meanwhile
    waits for ~1 ms of work, not 16 requests' worth (p99 /healthz 40 -> 4 ms in make attack)."""
    import asyncio

    import service.routes as routes

    app, state = client.app, client.app.state.faultline  # type: ignore[attr-defined]
    trace: list[str] = []  # "tick" once per loop iteration, "step" per CPU step

    def traced(function: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any) -> Any:
            trace.append("step")
            return function(*args)

        return step

    import service.predictor as predictor

    for name in ("load_json", "check_readings"):
        monkeypatch.setattr(routes, name, traced(getattr(routes, name)))
    monkeypatch.setattr(predictor, "to_arrays", traced(predictor.to_arrays))
    batcher = state.predictor.batcher
    monkeypatch.setattr(batcher, "_call", traced(batcher._call))
    body = orjson.dumps({"instances": [READING] * 1000})
    assert len(body) > routes.LARGE_BODY

    async def post() -> int:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        path = "/v1/predict"
        scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode()}
        scope |= {"headers": headers, "query_string": b"", "http_version": "1.1", "root_path": ""}
        await app(scope, receive, send)  # type: ignore[operator]
        return int(sent[0]["status"])

    async def run() -> list[int]:
        done = asyncio.Event()

        async def heartbeat() -> None:
            while not done.is_set():
                trace.append("tick")
                await asyncio.sleep(0)

        beating = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        statuses = await asyncio.gather(*(post() for _ in range(16)))
        done.set()
        await beating
        return list(statuses)

    assert client.portal.call(run) == [200] * 16  # type: ignore[union-attr]
    assert trace.count("step") == 16 * 4
    most = max(len(run) for run in "".join("s" if t == "step" else "|" for t in trace).split("|"))
    assert most == 1, f"{most} steps of large requests in one loop iteration"


@pytest.mark.parametrize(
    "unsafe", [{"max_batch": 100_000}, {"max_body_bytes": 64 * 1_048_576}, {"max_headers": 10_000}]
)
def test_settings_refuse_limits_that_would_stall_the_loop(unsafe: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        Settings(**unsafe)  # type: ignore[arg-type]


def test_settings_refuse_weak_or_missing_api_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="shorter than 16"):
        Settings(api_keys="short")
    with pytest.raises(ValidationError, match="cannot read"):
        Settings(api_keys_file=tmp_path / "absent")
    empty = tmp_path / "keys"
    empty.write_text("# no key yet\n\n")
    with pytest.raises(ValidationError, match="none was found"):
        Settings(api_keys_file=empty)


# --- findings 6 and 7: malformed bundles -> alive, not ready, with the reason --------------------
def _rewrite_manifest(path: Path) -> None:
    files = {p.name: B.sha256_file(p) for p in path.iterdir() if p.name != B.MANIFEST_FILE}
    (path / B.MANIFEST_FILE).write_text(json.dumps({"algorithm": "sha256", "files": files}))


def _metadata(edit: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        meta = json.loads((path / B.METADATA_FILE).read_text())
        edit(meta)
        (path / B.METADATA_FILE).write_text(json.dumps(meta))

    return apply


def _serving_file(name: Callable[[Path], str]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        spec = json.loads((path / B.SERVING_FILE).read_text())
        spec["estimator"]["file"] = name(path)
        (path / B.SERVING_FILE).write_text(json.dumps(spec))

    return apply


def _untrusted_pipeline(path: Path) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from skops import io as skops_io

    malicious = make_pipeline(FunctionTransformer(func=os.system))
    (path / B.MODEL_FILE).write_bytes(skops_io.dumps(malicious))


MALFORMED: dict[str, tuple[Callable[[Path], object], bool, str]] = {
    # name: (edit, serving form, reason expected on /readyz)
    "metadata not JSON": (
        lambda p: (p / B.METADATA_FILE).write_text("{nope"),
        True,
        "metadata.json is not valid JSON",
    ),
    "metadata without version": (
        _metadata(lambda m: m.pop("version")),
        True,
        "no usable version",
    ),
    "metadata with a bad threshold": (
        _metadata(lambda m: m.update(threshold="high")),
        True,
        "no numeric threshold",
    ),
    "reference is {}": (
        lambda p: (p / B.REFERENCE_FILE).write_text("{}"),
        True,
        "reference.json lacks",
    ),
    "corrupt model.skops, serving form off": (
        lambda p: (p / B.MODEL_FILE).write_bytes(b"PK\x03\x04 not a zip"),
        False,
        "model.skops is unreadable",
    ),
    "estimator file absolute": (
        _serving_file(lambda p: str(p / "model.onnx")),
        True,
        "outside the bundle",
    ),
    "estimator file with ..": (
        _serving_file(lambda p: f"../{p.name}/model.onnx"),
        True,
        "outside the bundle",
    ),
    "estimator file not in the manifest": (
        _serving_file(lambda p: "other.onnx"),
        True,
        "not in the manifest",
    ),
    "untrusted Pipeline, serving form on": (_untrusted_pipeline, True, "untrusted types"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_bundle_keeps_the_process_up_and_not_ready(
    case: str, bundle_path: Path, tmp_path: Path
) -> None:
    edit, serving_form, reason = MALFORMED[case]
    copy = tmp_path / bundle_path.name
    shutil.copytree(bundle_path, copy)
    edit(copy)
    _rewrite_manifest(copy)  # a manifest that matches: the content itself must be checked
    settings = Settings(model_dir=copy, log_format="json", serving_form=serving_form)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert reason in ready.json()["error"]["message"]
        assert client.post("/v1/predict", json=READING).status_code == 503
        assert client.get("/v1/model").status_code == 503


def test_a_symlinked_bundle_file_is_refused(bundle_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / bundle_path.name
    shutil.copytree(bundle_path, copy)
    outside = tmp_path / "elsewhere.md"
    shutil.move(copy / B.MODEL_CARD_FILE, outside)
    (copy / B.MODEL_CARD_FILE).symlink_to(outside)
    with pytest.raises(B.BundleIntegrityError, match="not a regular file"):
        B.load_bundle(copy, with_pipeline=False)


# --- finding 8: exposure ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked(service_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Any:
    keys = tmp_path_factory.mktemp("secret") / "api-keys"
    keys.write_text(f"# mounted from a Secret\n{KEY}\nanother-key-for-rotation-000\n")
    settings = service_settings.model_copy(update={"api_keys_file": keys})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": KEY[:-1]}, {"Authorization": KEY}],
    ids=["none", "wrong bearer", "almost the key", "no scheme"],
)
def test_v1_needs_a_valid_key(locked: TestClient, headers: dict[str, str]) -> None:
    before = scrape(locked)
    for method, path in (("POST", "/v1/predict"), ("GET", "/v1/model")):
        answer = locked.request(method, path, json=READING, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    after = scrape(locked)
    assert (
        metric_value(after, "faultline_auth_failures_total")
        - metric_value(before, "faultline_auth_failures_total")
        == 2
    )
    assert metric_value(after, "http_requests_total", status="401") >= 1


def test_a_valid_key_passes_and_probes_need_none(locked: TestClient) -> None:
    assert locked.post("/v1/predict", json=READING, headers={"X-API-Key": KEY}).is_success
    bearer = {"Authorization": "Bearer another-key-for-rotation-000"}
    assert locked.get("/v1/model", headers=bearer).is_success
    assert locked.get("/healthz").is_success and locked.get("/readyz").is_success


def test_the_api_port_reveals_little(client: TestClient, service_settings: Settings) -> None:
    for path in ("/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404, path
    slash = client.get("/v1/model/", headers={"host": "evil.example"}, follow_redirects=False)
    assert slash.status_code == 404 and "location" not in slash.headers
    meta = client.get("/v1/model").json()
    assert meta["version"] and meta["bundle_hash"]
    assert not {"git_commit", "sklearn_version", "python_version", "data", "params"} & set(meta)
    detailed = service_settings.model_copy(update={"model_details": True})
    with TestClient(create_app(detailed)) as revealing:
        assert "git_commit" in revealing.get("/v1/model").json()


# --- finding 9: drift ---------------------------------------------------------------------
def test_one_request_fills_a_bounded_share_of_the_drift_window(service_settings: Settings) -> None:
    settings = service_settings.model_copy(
        update={"drift_window": 1000, "drift_max_request_share": 0.05, "drift_min_readings": 10}
    )
    with TestClient(create_app(settings)) as client:
        extreme = {**READING, F.TORQUE.name: F.TORQUE.maximum}
        for _ in range(2):
            assert client.post("/v1/predict", json={"instances": [extreme] * 1000}).is_success
        invalid = {"instances": [{**extreme, F.TORQUE.name: -1.0}] * 1000}
        assert client.post("/v1/predict", json=invalid).status_code == 422
        time.sleep(0.05)
        client.post("/v1/predict", json=READING)  # publishes the (throttled) gauges
        text = scrape(client)
    window = metric_value(text, "faultline_drift_window_readings")
    assert window == 2 * 50 + 1  # 5 % of 1,000 per request; the invalid batch adds nothing
    assert metric_value(text, "faultline_drift_readings_skipped_total") == 2 * 950


# --- finding 10: no series from unusual methods, paths or field names -----------------------
ODD_METHODS = ["PROPFIND", "MKCOL", "COPY", "LOCK", "PURGE", "M-SEARCH", "REPORT", "FOO", "BAR"]


def _series(text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and line[0] != "#"}


def test_unknown_methods_and_paths_create_no_series(client: TestClient) -> None:
    client.post("/v1/predict", json={"f": 1})  # the bounded invalid-input series, once
    before = _series(scrape(client))
    for method in ODD_METHODS:
        for path in ("/v1/model/", "/v1/model", "/v1/predict", "/healthz", "/nope"):
            assert client.request(method, path).status_code in (404, 405)
    for i in range(50):  # each would add a series if any did
        client.get(f"/random/{i}/path")
        client.post("/v1/predict", json={f"field-{i}": 1})
    added = _series(scrape(client)) - before
    assert not {s for s in added if s.startswith("http_") or "field-" in s}, sorted(added)[:5]
