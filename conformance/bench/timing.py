"""Timing by clause perf.scaling: warm-up calls first, then ≥ 5 synchronised calls, median reported.

For what: every figure of `attnconf bench` goes through `measure`, so all adapters are timed alike:
inputs already native (converted outside the clock), jit compilation in the warm-up call, and the
adapter's `synchronize(result)` before the clock stops.
Must not: time conversion to or from NumPy, or report fewer than `min_rounds` calls.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def measure(call: Callable[[], Any], *, sync: Callable[[Any], None] | None = None, warmup: int = 1,
            min_rounds: int = 5, max_rounds: int = 50, budget_s: float = 1.0) -> dict:
    """{"median", "min", "mean", "stddev", "rounds"} in seconds of `call()`.

    Runs `warmup` untimed calls, then at least `min_rounds` timed calls and more (up to
    `max_rounds`) while the timed total stays under `budget_s`.
    """
    for _ in range(warmup):
        _finish(call(), sync)
    times: list[float] = []
    while len(times) < min_rounds or (len(times) < max_rounds and sum(times) < budget_s):
        start = time.perf_counter()
        _finish(call(), sync)
        times.append(time.perf_counter() - start)
    return summarize(times)


def summarize(times) -> dict:
    times = list(times)
    return {"median": statistics.median(times), "min": min(times), "mean": statistics.fmean(times),
            "stddev": statistics.stdev(times) if len(times) > 1 else 0.0, "rounds": len(times)}


def _finish(result, sync) -> None:
    if sync is not None:
        sync(result)
