"""Model selection: the best CV PR-AUC, or the cheapest to serve among near-ties."""

from __future__ import annotations

from training.train import choose_winner


def test_winner_is_best_or_cheapest_within_the_tolerance() -> None:
    scores = {"forest": (0.872, 60_000), "boosting": (0.8705, 1_160), "linear": (0.57, 11)}
    assert choose_winner(scores, 0.005) == "boosting"  # a tie on quality: cheaper wins
    assert choose_winner(scores, 0.001) == "forest"  # a real gap: quality wins
    assert choose_winner({"a": (0.9, 5), "b": (0.9, 5)}, 0.0) == "a"  # deterministic
