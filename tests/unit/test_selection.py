"""Model selection: the best CV PR-AUC, or the cheapest to serve among near-ties."""

from __future__ import annotations

from training.train import choose_winner


def test_winner_is_best_or_cheapest_within_the_tolerance() -> None:
    scores = {"forest": (0.872, 60_000), "boosting": (0.8705, 1_160), "linear": (0.57, 11)}
    assert choose_winner(scores, 0.005) == "boosting"  # a tie on quality: cheaper wins
    assert choose_winner(scores, 0.001) == "forest"  # a real gap: quality wins
    assert choose_winner({"a": (0.9, 5), "b": (0.9, 5)}, 0.0) == "a"  # deterministic


def test_threshold_is_the_expected_cost_minimum_for_calibrated_probabilities() -> None:
    """Flag when p x cost ratio >= 1 - p: 1 / (1 + ratio), and on honest probabilities the
    validation-optimal threshold lands there."""
    import numpy as np
    import pytest

    from training.train import bayes_threshold, best_cost_threshold

    assert bayes_threshold(10) == pytest.approx(1 / 11)
    assert bayes_threshold(1) == 0.5
    with pytest.raises(ValueError, match="positive"):
        bayes_threshold(0)
    rng = np.random.default_rng(0)
    p = rng.choice([0.01, 0.05, 0.2, 0.6, 0.95], size=200_000)
    y = (rng.random(p.size) < p).astype(int)  # calibrated by construction
    for ratio in (1.0, 3.0, 10.0):
        best, _cost = best_cost_threshold(y, p, ratio)
        # the best cut lies between the levels around 1 / (1 + ratio)
        below = p[p < bayes_threshold(ratio)].max()
        above = p[p >= bayes_threshold(ratio)].min()
        assert below < best <= above
