"""Locust user for Faultline: thin; payloads and checks live in loadtest/payloads.py.

    locust --config loadtest/locust.conf -H http://127.0.0.1:8000 --scenario ramp

The SLO gate at the end sets the exit code from the alerting SLOs (prometheus/observability.yml).
"""

from __future__ import annotations

import gc
import json
import random
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment

from loadtest import slo
from loadtest.payloads import JSON, Payloads, check_error, check_prediction
from loadtest.shapes import SCENARIOS, ScenarioShape  # noqa: F401 (Locust finds the shape here)
from loadtest.slo import gate


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("Faultline")
    group.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="steady",
        help="Load shape: steady, ramp or spike.",
    )
    group.add_argument("--scenario-seconds", type=float, default=60, help="Scenario length.")
    group.add_argument("--peak-users", type=int, default=10, help="Users at the peak.")
    group.add_argument("--user-rps", type=float, default=10, help="Requests/s per user.")
    group.add_argument("--batch-share", type=float, default=0.1, help="Share of batch requests.")
    group.add_argument("--batch-size", type=int, default=20, help="Readings per batch.")
    group.add_argument(
        "--invalid-share", type=float, default=0.02, help="Share of deliberately invalid requests."
    )
    group.add_argument("--drift-share", type=float, default=0.0, help="Share of drifted readings.")
    group.add_argument(
        "--payload-seed",
        type=int,
        default=42,
        help="Generator seed of the readings (use the training seed).",
    )
    group.add_argument(
        "--slo-max-failure-ratio",
        type=float,
        default=slo.MAX_FAILURE_RATIO,
        help="Gate: failures / requests (the availability SLO).",
    )
    group.add_argument("--slo-p95-ms", type=float, default=slo.P95_MS, help="Gate: p95 in ms.")
    group.add_argument(
        "--slo-p99-ms", type=float, default=slo.P99_MS, help="Gate: p99 in ms (the SLO bound)."
    )
    group.add_argument(
        "--summary-json", default="", help="Write the gate's figures (requests, p50/p95/p99) here."
    )


@events.init.add_listener
def _payloads(environment: Environment, **_: Any) -> None:
    # Built before any user starts: generating the pool inside a user would block the event
    # loop and inflate the latency of every request in flight.
    PredictUser.payloads = Payloads(getattr(environment.parsed_options, "payload_seed", 42))
    # ... and frozen: full collections walking 10,000 readings stalled requests in flight by
    # ~40 ms about once a second, which the latency gate then blamed on the service.
    gc.collect()
    gc.freeze()


@events.quitting.add_listener
def _slo_gate(environment: Environment, **_: Any) -> None:
    gate(environment)


class PredictUser(FastHttpUser):
    """Sends single readings, batches, drifted and invalid requests in configured shares."""

    payloads: Payloads | None = None

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        return constant_throughput(getattr(options, "user_rps", 10))(self)

    def on_start(self) -> None:
        self.options = self.environment.parsed_options
        # The first request of each user pays for the client's connection set-up (tens of ms
        # on a busy machine); it is named "warmup" and left out of the SLO gate.
        self.client.get("/readyz", name="warmup")

    @task
    def predict(self) -> None:
        assert self.payloads is not None
        roll = random.random()
        invalid_share = getattr(self.options, "invalid_share", 0.02)
        batch_share = getattr(self.options, "batch_share", 0.1)
        drift_share = getattr(self.options, "drift_share", 0.0)
        if roll < invalid_share:
            self._invalid()
        elif roll < invalid_share + batch_share:
            size = getattr(self.options, "batch_size", 20)
            self._valid(self.payloads.batch(size), size, "batch")
        elif roll < invalid_share + batch_share + drift_share:
            self._valid(self.payloads.drifted(), 1, "drifted")
        else:
            self._valid(self.payloads.reading(), 1, "single")

    def _valid(self, body: dict[str, Any], readings: int, kind: str) -> None:
        with self.client.post(
            "/v1/predict",
            data=json.dumps(body),
            name=f"/v1/predict [{kind}]",
            headers={"Content-Type": JSON},
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            problem = check_prediction(response.json(), readings)
            if problem:
                response.failure(problem)

    def _invalid(self) -> None:
        assert self.payloads is not None
        case = self.payloads.invalid()
        with self.client.post(
            "/v1/predict",
            data=case.body,
            headers={"Content-Type": case.content_type},
            name=f"/v1/predict [invalid:{case.name}]",
            catch_response=True,
        ) as response:
            if response.status_code != case.status:
                response.failure(f"expected {case.status}, got {response.status_code}")
                return
            problem = check_error(response.json(), case)
            if problem:
                response.failure(problem)
            else:
                response.success()
