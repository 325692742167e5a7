"""One benchmark run end to end: peaks, sweep, scaling fits, speed statements -> `benchmarks` dict.

For what: shared by `attnconf bench` and the tests, so the JSON they write is the same.
The section: {machine{cpu, cores, threads, numpy blas, …}, peak_gflops{dtype: GFLOP/s},
peak_probe{dtype: {gflops, n, library, rounds}}, bandwidth_gbps and bandwidth_probe{gbps, bytes,
rounds, library} (the copy probe, when an operation counts bytes: perf.bytes), points[…], scaling[…], statements[…],
skipped[…], memory_method, reference_targets (when asked)}.
Must not: import a framework itself (adapters do), or fail anything without a user budget.
"""
from __future__ import annotations

import time
from typing import Callable

from attnconf.conformance.bench import bandwidth, checks, machine, memory, peak, sweep


def run_benchmarks(adapters: list, *, quick: bool = False, max_L: int = 4096,
                   max_positions: int | None = None, operations=None, dtypes=None,
                   budgets: dict | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Measure `adapters` (instances) over the sweep grid; the `benchmarks` section."""
    started = time.perf_counter()
    kw = {}
    if operations:
        kw["operations"] = tuple(operations)
    if dtypes:
        kw["dtypes"] = tuple(dtypes)
    if max_positions is not None:
        kw["max_positions"] = max_positions
    points = sweep.grid(quick=quick, max_L=max_L, **kw)
    from attnconf import operations

    counted = {op.name for op in operations.operations() if op.work_unit == "flop"}  # the others have no peak
    wanted = sorted({p.dtype for p in points if p.operation in counted} | {"float64"})
    # A probe of a few milliseconds can land on a moment when another process holds a core, and a
    # low peak shows as "% of peak" above 100: probe with enough rounds, and again after the sweep.
    probe_kw = dict(n=1024 if quick else None, rounds=10 if quick else 5)
    probe = peak.peaks(wanted, **probe_kw)
    peak_gflops = {d: r["gflops"] for d, r in probe.items()}
    if progress:
        progress("matmul peak (same run): " + ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in peak_gflops.items()))
    in_bytes = {op.name for op in operations.operations() if op.work_unit == "byte"}
    copy = bandwidth.copy_bandwidth() if any(p.operation in in_bytes for p in points) else None
    if progress and copy:
        progress(f"copy bandwidth (same run): {copy['gbps']:.1f} GB/s")
    measured, skipped = sweep.run_sweep(adapters, points, peak_gflops=peak_gflops,
                                        budget_s=0.2 if quick else 1.0, progress=progress,
                                        bandwidth_gbps=copy and copy["gbps"])
    if copy:   # probed again after the sweep, as the matmul peak: the higher holds
        copy = bandwidth.best_of(copy, bandwidth.copy_bandwidth())
    for d, r in peak.peaks(wanted, **probe_kw).items():  # the higher of the two probes holds
        if r["gflops"] > peak_gflops.get(d, 0.0):
            probe[d], peak_gflops[d] = r, r["gflops"]
    for point in measured:
        top = peak_gflops.get(point.get("dtype"))
        if point.get("gflops") and top:
            point["pct_peak"] = 100.0 * point["gflops"] / top
        if point.get("gbps") and copy:
            point["pct_bandwidth"] = 100.0 * point["gbps"] / copy["gbps"]
    fits = checks.scaling(measured)
    stmts = checks.statements(measured, fits, **(budgets or {}))
    return {"machine": machine.machine_info(), "peak_gflops": peak_gflops, "peak_probe": probe,
            "bandwidth_gbps": copy and copy["gbps"], "bandwidth_probe": copy,
            "points": measured, "scaling": fits, "statements": stmts, "skipped": skipped,
            "memory_method": memory.method(), "quick": quick,
            "elapsed_s": time.perf_counter() - started}
