"""Load prometheus/observability.yml, the one observability config, into typed values.

Everything derived from its numbers (error budgets, bounds in milliseconds, `le` label values,
PromQL selectors and the model_info join) is derived here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).resolve().parent / "observability.yml"
MODEL_INFO_BY_INSTANCE = "faultline:model_info:by_instance"


def number(value: float) -> str:
    """A number as PromQL, YAML and people write it: no trailing zeros, no exponent."""
    return f"{value:g}"


def percent(ratio: float) -> str:
    """A ratio as a percentage (without the sign) free of float noise."""
    return number(round(ratio * 100, 9))


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window burn-rate condition."""

    long: str
    short: str
    factor: float


@dataclass(frozen=True)
class Config:
    """The observability config with its derived values."""

    raw: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    # --- selectors ---------------------------------------------------------------------------
    @property
    def name_regex(self) -> str:
        return str(self.raw["selectors"]["name_regex"])

    def matches(self, label: str) -> str:
        """`label=~"<name regex>"`: the matcher of a job, pod or HPA name."""
        return f'{label}=~"{self.name_regex}"'

    @property
    def job(self) -> str:
        """The label matcher selecting the service's series."""
        return self.matches("job")

    @property
    def handler(self) -> str:
        return str(self.raw["selectors"]["handler"])

    @property
    def predict(self) -> str:
        """The matcher of the route every SLO is about."""
        return f'handler="{self.handler}"'

    @property
    def by(self) -> str:
        """The labels every recording rule is per."""
        return ", ".join(self.raw["aggregation_labels"])

    @property
    def model_info_metric(self) -> str:
        return str(self.raw["model_info"]["metric"])

    @property
    def join_on(self) -> list[str]:
        return list(self.raw["model_info"]["join_on"])

    @property
    def model_info_join(self) -> str:
        """What an HTTP series is multiplied by to carry the model version."""
        info = self.raw["model_info"]
        return (
            f"* on ({', '.join(info['join_on'])}) group_left ({', '.join(info['join_labels'])}) "
            f"{MODEL_INFO_BY_INSTANCE}"
        )

    # --- SLOs --------------------------------------------------------------------------------
    @property
    def period(self) -> str:
        return str(self.raw["slos"]["period"])

    @property
    def availability_objective(self) -> float:
        return float(self.raw["slos"]["availability"]["objective"])

    @property
    def availability_budget(self) -> float:
        """The share of requests allowed to fail (the Locust gate's failure ratio too)."""
        return round(1 - self.availability_objective, 9)

    @property
    def latency_objective(self) -> float:
        return float(self.raw["slos"]["latency"]["objective"])

    @property
    def latency_budget(self) -> float:
        return round(1 - self.latency_objective, 9)

    @property
    def latency_seconds(self) -> float:
        """The latency SLO bound: also the p99 bound of the gates."""
        return float(self.raw["slos"]["latency"]["threshold_seconds"])

    @property
    def latency_le(self) -> str:
        """The histogram bucket (`le` label value) of the latency bound."""
        return number(self.latency_seconds)

    @property
    def latency_ms(self) -> float:
        return round(self.latency_seconds * 1000, 9)

    @property
    def p95_ms(self) -> float:
        return round(float(self.raw["slos"]["latency"]["p95_seconds"]) * 1000, 9)

    @property
    def burn_windows(self) -> list[BurnWindow]:
        return [BurnWindow(**w) for w in self.raw["burn_rates"]["windows"]]

    @property
    def slo_windows(self) -> list[str]:
        """Every window a burn-rate alert reads, shortest first."""
        seconds = {"m": 60, "h": 3600, "d": 86400}
        found = {w for b in self.burn_windows for w in (b.long, b.short)}
        return sorted(found, key=lambda w: int(w[:-1]) * seconds[w[-1]])

    # --- thresholds --------------------------------------------------------------------------
    @property
    def alerts(self) -> dict[str, Any]:
        return dict(self.raw["alerts"])

    @property
    def canary(self) -> dict[str, Any]:
        return dict(self.raw["canary"])


def load(path: Path = CONFIG) -> Config:
    """The config at path (default: prometheus/observability.yml)."""
    return Config(yaml.safe_load(path.read_text()))
