"""How a probability becomes an answer, written once for training, evaluation and serving."""

from __future__ import annotations

import numpy as np

# Bucket upper bounds for predicted probabilities, shared by the reference profile and the
# service's histogram so Prometheus can compare live scores with the reference directly.
PROBABILITY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    0.9,
    0.99,
    1.0,
)


def decide(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """The decision rule: failure when the probability reaches the bundle's threshold."""
    return np.asarray(probabilities) >= threshold
