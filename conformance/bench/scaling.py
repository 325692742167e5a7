"""The scaling exponent of clause perf.scaling: least-squares slope of log time against log L.

Must not: fit points below `min_time_s` (fixed overheads dominate them and flatten the slope).
"""
from __future__ import annotations

import math
from typing import Sequence

MIN_TIME_S = 1e-3   # spec/performance.md: only points whose median exceeds 1 ms


def fit_exponent(sizes: Sequence[float], times: Sequence[float], *,
                 min_time_s: float = MIN_TIME_S) -> dict:
    """{"exponent": α or None, "intercept", "points": n used}: log t = α · log L + c.

    None when fewer than two usable points (distinct sizes, time above min_time_s) remain.
    """
    pairs = [(float(s), float(t)) for s, t in zip(sizes, times)
             if s > 0 and t is not None and t > min_time_s]
    if len({s for s, _ in pairs}) < 2:
        return {"exponent": None, "intercept": None, "points": len(pairs)}
    xs = [math.log(s) for s, _ in pairs]
    ys = [math.log(t) for _, t in pairs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return {"exponent": slope, "intercept": my - slope * mx, "points": len(pairs)}
