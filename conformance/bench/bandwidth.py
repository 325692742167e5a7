"""This machine's memory bandwidth, measured in the same run as the benchmarks (clause perf.bytes).

A copy probe: `np.copyto` of a float64 array much larger than the caches (256 MiB by default)
into one already touched, best of a few rounds, counted as bytes read + bytes written (2 × the
array). One NumPy thread, no page faults in the timed rounds: what one core streams, the figure
memory-bound operations (RoPE) are compared with. A probe, not a benchmark: like the matmul
peak (peak.py) it is taken before and after a sweep and the higher kept, because a short probe
can land on a moment when another process holds the memory bus.
Must not: import a framework, or run longer than about a second.
"""
from __future__ import annotations

import time

import numpy as np

PROBE_BYTES = 256 * 2 ** 20


def copy_bandwidth(*, nbytes: int | None = None, rounds: int = 5) -> dict:
    """{"gbps", "bytes", "rounds", "library"}: the best copy rate in GB/s (10⁹ bytes/s)."""
    n = max(1, (nbytes or PROBE_BYTES) // 8)
    src = np.ones(n)
    dst = np.empty_like(src)
    np.copyto(dst, src)          # warm-up: both arrays' pages faulted in before the clock
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    moved = 2 * src.nbytes      # read src + write dst
    return {"gbps": moved / best / 1e9, "bytes": moved, "rounds": rounds,
            "library": f"numpy {np.__version__} copyto"}


def best_of(*probes: dict | None) -> dict | None:
    """The probe with the highest rate (None entries ignored): load only ever lowers the figure."""
    probes = [p for p in probes if p]
    return max(probes, key=lambda p: p["gbps"]) if probes else None
