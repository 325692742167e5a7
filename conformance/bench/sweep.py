"""Benchmark points: build inputs, time one adapter operation, and turn the time into figures.

A point is {adapter, framework, operation, dtype, B, H, L, S, E, causal, time_s (median),
stats{min, mean, stddev, rounds}, gflops, pct_peak, peak_rss_mb, rss_before_mb} (encodings: L = num_positions,
E = dim, and entries_per_s instead of gflops; RoPE: L = T, bytes, bytes_per_s, gbps and
pct_bandwidth of the copy probe instead, perf.bytes). Grids follow issue 5: L = S doubling from 128,
heads, E ∈ {64, 128}, float32 first, float64 and bfloat16 where the adapter supports them, and the
encoding table up to 10⁶ × 512.
Must not: convert arrays inside the timed region, or count an unsupported operation as measured.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from attnconf.conformance.bench import flops, memory, timing
from attnconf.errors import Unsupported


@dataclasses.dataclass(frozen=True)
class Point:
    operation: str
    dtype: str
    B: int
    H: int
    L: int
    S: int
    E: int
    causal: bool = False

    def shape(self) -> dict:
        return {"B": self.B, "H": self.H, "L": self.L, "S": self.S, "E": self.E, "Ev": self.E,
                "D": self.H * self.E, "dtype": self.dtype}   # dtype: a byte count's item size


def grid(*, quick: bool = False, max_L: int = 4096, dtypes=("float32", "float64", "bfloat16"),
         operations=None, max_positions: int = 1_000_000) -> list[Point]:
    """The points of a sweep, cheapest first within each series: each operation's bench_grid
    (attnconf.operations) over L = S doubling from 128; operations: names (None: every registered
    operation that has a bench_grid)."""
    from attnconf import operations as registry

    if quick:
        Ls, dtypes, max_positions = [128, 256, 512], ("float32",), 10_000
        max_L = min(max_L, 512)
    else:
        Ls = [L for L in (128, 256, 512, 1024, 2048, 4096, 8192) if L <= max_L]
    ops = [registry.get(name) for name in operations] if operations is not None else [
        op for op in registry.operations() if op.bench_grid is not None]
    return [Point(op.name, *fields) for op in ops if op.bench_grid is not None
            for fields in op.bench_grid(quick, Ls, tuple(dtypes), max_L, max_positions)]


def bind(adapter, point: Point, seed: int = 0) -> Callable[[], object]:
    """A no-argument call of the adapter's operation on native inputs made here, outside the clock
    (the operation's bench_call)."""
    from attnconf import operations as registry

    op = registry.get(point.operation)
    if op.bench_call is None:
        raise ValueError(f"operation {op.name} should declare a bench_call to be benchmarked, but has none")
    return op.bench_call(adapter, point, seed)


def synchronizer(adapter) -> Callable[[object], None]:
    """Synchronise every array of a result (tuples for gradients) with the adapter's own sync."""
    def sync(result):
        for value in (result if isinstance(result, (tuple, list)) else (result,)):
            adapter.synchronize(value)
    return sync


def supports(adapter, point: Point) -> str | None:
    """None when the adapter declares the point's operation and dtype, else the reason it is skipped."""
    from attnconf import operations as registry

    caps = adapter.capabilities
    if caps.operations and point.operation not in caps.operations:
        return f"{adapter.name} does not declare {point.operation}"
    needs = registry.get(point.operation).needs
    reason = needs(caps) if needs is not None else ""
    if reason:
        return f"{adapter.name} {reason}"
    if point.dtype not in caps.dtypes:
        return f"{adapter.name} does not declare dtype {point.dtype}"
    return None


def run_point(adapter, point: Point, *, peak_gflops: dict, budget_s: float = 1.0,
              min_rounds: int = 5, seed: int = 0, bandwidth_gbps: float | None = None) -> dict:
    """Time one point: {"point": …} measured, or {"skipped": reason} when unsupported."""
    reason = supports(adapter, point)
    if reason:
        return {"skipped": reason}
    memory.reset_peak()
    before = memory.current_rss_mb()
    try:
        call = bind(adapter, point, seed)
        stats = timing.measure(call, sync=synchronizer(adapter), budget_s=budget_s,
                               min_rounds=min_rounds)
    except Unsupported as exc:
        return {"skipped": exc.reason}
    record = figures(adapter, point, stats, peak_gflops, memory.peak_rss_mb(), bandwidth_gbps)
    # The process's baseline (frameworks loaded) before the point: peak - before is the point's own.
    record["rss_before_mb"] = None if before is None else round(before, 1)
    return {"point": record}


def figures(adapter, point: Point, stats: dict, peak_gflops: dict, peak_rss_mb: float,
            bandwidth_gbps: float | None = None) -> dict:
    """The point record from a timing: GFLOP/s, % of the dtype's peak (None when unknown); for
    a count in bytes GB/s and % of the copy bandwidth (bandwidth.py) instead (perf.bytes)."""
    from attnconf import operations as registry

    op = registry.get(point.operation)
    work = flops.point_work(point.operation, point.shape(), point.causal)
    record = {"adapter": adapter.name, "framework": adapter.framework,
              "operation": point.operation, "dtype": point.dtype, "B": point.B, "H": point.H,
              "L": point.L, "S": point.S, "E": point.E, "causal": point.causal,
              "time_s": stats["median"],
              "stats": {k: stats[k] for k in ("min", "mean", "stddev", "rounds")},
              "peak_rss_mb": round(peak_rss_mb, 1)}
    if op.work_unit != "flop":     # entries (bytes) per second: no matmul peak to compare with
        record.update({rate_key(op.work_unit): work / stats["median"], "gflops": None, "pct_peak": None})
        if op.work_unit == "byte":
            gbps = work / stats["median"] / 1e9
            record.update(bytes=work, gbps=gbps,
                          pct_bandwidth=100.0 * gbps / bandwidth_gbps if bandwidth_gbps else None)
    else:
        gflops = work / stats["median"] / 1e9
        peak = peak_gflops.get(point.dtype)
        record.update(flops=work, gflops=gflops,
                      pct_peak=100.0 * gflops / peak if peak else None)
    return record


def run_sweep(adapters: Iterable, points: list[Point], *, peak_gflops: dict, budget_s: float = 1.0,
              progress: Callable[[str], None] | None = None,
              bandwidth_gbps: float | None = None) -> tuple[list, list]:
    """(measured points, skipped [{adapter, operation, dtype, reason}]) over adapters × points."""
    measured, skipped = [], []
    for adapter in adapters:
        seen_skips = set()
        for point in points:
            out = run_point(adapter, point, peak_gflops=peak_gflops, budget_s=budget_s,
                            bandwidth_gbps=bandwidth_gbps)
            if "skipped" in out:
                key = (point.operation, point.dtype, out["skipped"])
                if key not in seen_skips:
                    seen_skips.add(key)
                    skipped.append({"adapter": adapter.name, "operation": point.operation,
                                    "dtype": point.dtype, "reason": out["skipped"]})
                continue
            measured.append(out["point"])
            if progress:
                progress(describe(out["point"]))
    return measured, skipped


RATES = {"entry": "entries_per_s", "byte": "bytes_per_s"}   # Operation.work_unit -> point key


def rate_key(unit: str) -> str:
    """The point's key for a work unit other than flops ("entry" -> "entries_per_s")."""
    if unit not in RATES:
        raise ValueError(f"work_unit should be one of flop, {', '.join(RATES)}, but got {unit!r}")
    return RATES[unit]


def describe(p: dict) -> str:
    # fixed-width fields, "causal" a column of its own: rows with and without it stay aligned
    where = f"{p['adapter']:<18} {p['operation']:<20} {p['dtype']:<8} {'B=' + str(p['B']):<4} " \
            f"{'H=' + str(p['H']):<5} {'L=S=' + str(p['L']):<11} {'E=' + str(p['E']):<5} " \
            f"{'causal' if p['causal'] else '':<6}"
    if p.get("gbps") is not None:
        pct = f"{p['pct_bandwidth']:5.1f} % copy bandwidth" if p.get("pct_bandwidth") is not None else "bandwidth n/a"
        return f"{where}  {p['time_s'] * 1e3:9.2f} ms  {p['gbps']:7.2f} GB/s  {pct}"
    if p.get("gflops") is None:
        key = next(k for k in RATES.values() if k in p)
        return f"{where}  {p['time_s'] * 1e3:9.2f} ms  {p[key] / 1e6:9.1f} M {key.split('_')[0]}/s"
    pct = f"{p['pct_peak']:5.1f} % peak" if p.get("pct_peak") is not None else "peak n/a"
    return f"{where}  {p['time_s'] * 1e3:9.2f} ms  {p['gflops']:7.1f} GFLOP/s  {pct}  " \
           f"{p['peak_rss_mb']:.0f} MiB"
