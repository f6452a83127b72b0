"""Drawing one of many markets in proportion to its activity, as markets open and resolve.

The engine draws a market for every order-flow event. A list of cumulative weights (what
``random.choices`` takes) draws in O(log n) but must be rebuilt, in O(n), whenever a weight changes:
with the venue's 22,800 markets resolving and opening every few seconds, that rebuild was the engine's
cost. :class:`Weights` is a Fenwick tree (a binary indexed tree) over integer weights: it draws, changes a
weight and grows by one, each in O(log n), and integers keep its sums exact however long it runs.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Weights"]


class Weights:
    """Non-negative integer weights by position, drawn in proportion to them.

    Args:
        weights: the first weights, position 0 first.
    """

    __slots__ = ("_tree", "_values", "total")

    def __init__(self, weights: Iterable[int] = ()) -> None:
        self._values: list[int] = []
        self._tree: list[int] = [0]  # 1-based: _tree[i] sums the values of positions (i - lowbit(i), i]
        self.total = 0
        """The sum of every weight."""
        values = list(weights)
        if any(w < 0 for w in values):
            raise ValueError("weights must not be negative")
        tree = [0, *values]
        for i in range(1, len(tree)):  # O(n) build: each node hands its sum to its parent once
            parent = i + (i & -i)
            if parent < len(tree):
                tree[parent] += tree[i]
        self._values, self._tree, self.total = values, tree, sum(values)

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, position: int) -> int:
        return self._values[position]

    def set(self, position: int, weight: int) -> None:
        """Change one weight, O(log n).

        Raises:
            IndexError: no such position.
            ValueError: a negative weight.
        """
        if weight < 0:
            raise ValueError("weights must not be negative")
        delta = weight - self._values[position]
        self._values[position] = weight
        self.total += delta
        tree, i = self._tree, position + 1
        while i < len(tree):
            tree[i] += delta
            i += i & -i

    def append(self, weight: int) -> None:
        """One more position at the end, O(log n)."""
        if weight < 0:
            raise ValueError("weights must not be negative")
        n = len(self._values) + 1
        # the new node covers positions (n - lowbit(n), n]: its own weight and the ones before it
        self._tree.append(weight + self._prefix(n - 1) - self._prefix(n - (n & -n)))
        self._values.append(weight)
        self.total += weight

    def _prefix(self, count: int) -> int:
        """The sum of the first ``count`` weights."""
        tree, total = self._tree, 0
        while count > 0:
            total += tree[count]
            count -= count & -count
        return total

    def pick(self, fraction: float) -> int:
        """The position whose share of :attr:`total` holds ``fraction`` (in [0, 1), e.g. ``random()``):
        the first position whose running sum exceeds ``fraction * total``, as ``random.choices`` picks
        with cumulative weights. A position of weight 0 is never picked.

        Raises:
            ValueError: every weight is 0.
        """
        if self.total <= 0:
            raise ValueError("nothing to pick: every weight is 0")
        target = fraction * self.total
        tree, n = self._tree, len(self._values)
        position = 0
        step = 1 << n.bit_length()
        while step:
            nxt = position + step
            if nxt <= n and tree[nxt] <= target:
                position = nxt
                target -= tree[nxt]
            step >>= 1
        # the weights before ``position`` sum to at most the target and its own takes the sum past it,
        # so it has a weight; only a fraction * total rounded up to total itself lands past the end
        return position if position < n else self._last_positive()

    def _last_positive(self) -> int:
        """The last position with a weight."""
        return next(p for p in range(len(self._values) - 1, -1, -1) if self._values[p])
