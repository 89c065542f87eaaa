"""Load scenarios (no Locust import): stages and the user count at any moment.

Each scenario is a list of stages (share of the total duration, share of the peak users at the
stage's end); users change linearly within a stage.
"""

from __future__ import annotations

# (share of the duration, users at the end of the stage as a share of the peak)
SCENARIOS: dict[str, list[tuple[float, float]]] = {
    "steady": [(0.05, 1.0), (0.95, 1.0)],
    "ramp": [(0.4, 1.0), (0.2, 1.0), (0.4, 0.05)],
    "spike": [(0.05, 0.2), (0.3, 0.2), (0.05, 1.0), (0.2, 1.0), (0.05, 0.2), (0.35, 0.2)],
}


def users_at(scenario: str, elapsed: float, duration: float, peak: int) -> int | None:
    """Users wanted `elapsed` seconds into the scenario, or None once it is over."""
    if elapsed >= duration:
        return None
    start_time, start_share = 0.0, 0.0
    for share, target in SCENARIOS[scenario]:
        end_time = start_time + share * duration
        if elapsed < end_time:
            progress = (elapsed - start_time) / max(end_time - start_time, 1e-9)
            return max(1, round(peak * (start_share + (target - start_share) * progress)))
        start_time, start_share = end_time, target
    return max(1, round(peak * start_share))
