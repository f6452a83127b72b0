"""The engine's weighted draw: the market random.choices would pick from cumulative weights, whatever
weights changed or were added since, without rebuilding anything."""

from __future__ import annotations

import itertools
import random
from bisect import bisect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyfeed.sim.weights import Weights


def reference_pick(weights: list[int], fraction: float) -> int:
    """What random.choices does with cum_weights: bisect the running sums at fraction * total."""
    cumulative = list(itertools.accumulate(weights))
    return bisect(cumulative, fraction * cumulative[-1], 0, len(weights) - 1)


@given(
    weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=80).filter(any),
    changes=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 10**6)), max_size=30),
    added=st.lists(st.integers(0, 10**6), max_size=20),
    fractions=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=20),
)
def test_picks_what_cumulative_weights_pick_after_changes_and_additions(
    weights: list[int], changes: list[tuple[int, int]], added: list[int], fractions: list[float]
) -> None:
    tree = Weights(weights)
    model = list(weights)
    for weight in added:
        tree.append(weight)
        model.append(weight)
    for position, weight in changes:
        position %= len(model)
        tree.set(position, weight)
        model[position] = weight
    assert len(tree) == len(model) and tree.total == sum(model)
    assert [tree[i] for i in range(len(model))] == model
    if not any(model):
        with pytest.raises(ValueError, match="every weight is 0"):
            tree.pick(0.5)
        return
    for fraction in fractions:
        picked = tree.pick(fraction)
        assert model[picked] > 0, "a weight of 0 is never picked"
        if fraction * tree.total < tree.total:  # else rounding took it to the end: choices clamps there
            assert picked == reference_pick(model, fraction)


def test_the_share_of_each_position_follows_its_weight() -> None:
    tree = Weights([1, 0, 3, 6])
    rng = random.Random(4)
    counts = [0, 0, 0, 0]
    for _ in range(20_000):
        counts[tree.pick(rng.random())] += 1
    assert counts[1] == 0
    assert [round(c / 20_000, 1) for c in counts] == [0.1, 0.0, 0.3, 0.6]


def test_negative_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Weights([1, -1])
    tree = Weights([1])
    with pytest.raises(ValueError, match="negative"):
        tree.set(0, -2)
    with pytest.raises(ValueError, match="negative"):
        tree.append(-2)
    with pytest.raises(ValueError, match="every weight is 0"):
        Weights().pick(0.3)
