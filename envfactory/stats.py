"""Small statistics shared by held-out evaluation, the benchmarks and sweep reports."""

from __future__ import annotations

import math

SMOKE_N = 30  # below this many tasks a score is labelled smoke-sized: an estimate, not a measurement


def mean_stderr(scores: list[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (sample std / sqrt(n)); stderr None (undefined) for n < 2."""
    n = len(scores)
    if n == 0:
        return 0.0, None
    m = sum(scores) / n
    if n < 2:
        return m, None
    var = sum((s - m) ** 2 for s in scores) / (n - 1)
    return m, math.sqrt(var / n)
