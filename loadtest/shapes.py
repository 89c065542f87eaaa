"""Load scenarios as one LoadTestShape: steady, ramp (drives an HPA up and down), spike.

`--scenario`, `--scenario-seconds` and `--peak-users` choose the scenario (loadtest/scenarios.py),
its length and its height.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtest.scenarios import SCENARIOS, users_at

__all__ = ["SCENARIOS", "ScenarioShape"]


class ScenarioShape(LoadTestShape):
    """Follows the scenario chosen on the command line (or in locust.conf)."""

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        scenario = getattr(options, "scenario", "steady")
        duration = float(getattr(options, "scenario_seconds", 60))
        peak = int(getattr(options, "peak_users", 10))
        users = users_at(scenario, self.get_run_time(), duration, peak)
        return None if users is None else (users, float(max(peak, 1)))
