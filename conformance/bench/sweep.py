"""Benchmark points: build inputs, time one adapter operation, and turn the time into figures.

A point is {adapter, framework, operation, dtype, B, H, L, S, E, causal, time_s (median),
stats{min, mean, stddev, rounds}, gflops, pct_peak, peak_rss_mb, rss_before_mb} (encodings: L = num_positions,
E = dim, and entries_per_s instead of gflops). Grids follow issue 5: L = S doubling from 128,
heads, E ∈ {64, 128}, float32 first, float64 and bfloat16 where the adapter supports them, and the
encoding table up to 10⁶ × 512.
Must not: convert arrays inside the timed region, or count an unsupported operation as measured.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

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
                "D": self.H * self.E}


def grid(*, quick: bool = False, max_L: int = 4096, dtypes=("float32", "float64", "bfloat16"),
         operations=("sdpa", "sdpa_vjp", "multi_head_attention", "sinusoidal_encoding"),
         max_positions: int = 1_000_000) -> list[Point]:
    """The points of a sweep, cheapest first within each series."""
    if quick:
        Ls, dtypes, max_positions = [128, 256, 512], ("float32",), 10_000
        max_L = min(max_L, 512)
    else:
        Ls = [L for L in (128, 256, 512, 1024, 2048, 4096, 8192) if L <= max_L]
    H = 2 if quick else 8
    points: list[Point] = []
    for op in operations:
        if op == "sinusoidal_encoding":
            n = 1000
            while n <= max_positions:
                points.append(Point(op, "float32", 1, 1, n, n, 64 if quick else 512))
                n *= 10
            continue
        op_Ls = [L for L in Ls if op == "sdpa" or L <= max(min(max_L, 2048), Ls[0])]
        for dtype in dtypes:
            for L in op_Ls:                                   # the scaling series
                points.append(Point(op, dtype, 1, H, L, L, 64))
            if op == "sdpa" and dtype == "float32":
                for L in op_Ls:                               # causal halves the work
                    points.append(Point(op, dtype, 1, H, L, L, 64, causal=True))
                if not quick:
                    mid = min(1024, max_L)
                    points.append(Point(op, dtype, 1, H, mid, mid, 128))   # E = 128
                    points += [Point(op, dtype, 1, h, mid, mid, 64) for h in (1, 16)]
    return points


def inputs_for(point: Point, seed: int = 0) -> dict:
    """NumPy float64 inputs of the point's shapes (values rounded to the point's dtype later)."""
    rng = np.random.default_rng(seed)
    B, H, L, S, E = point.B, point.H, point.L, point.S, point.E
    if point.operation in ("sdpa", "sdpa_vjp"):
        arrays = {"query": rng.standard_normal((B, H, L, E)), "key": rng.standard_normal((B, H, S, E)),
                  "value": rng.standard_normal((B, H, S, E))}
        if point.operation == "sdpa_vjp":
            arrays["grad_output"] = rng.standard_normal((B, H, L, E))
        return arrays
    if point.operation == "multi_head_attention":
        D = H * E
        w = 1.0 / np.sqrt(D)
        return {"query_input": rng.standard_normal((B, L, D)), "key_value_input": None,
                "wq": rng.standard_normal((D, D)) * w, "wk": rng.standard_normal((D, D)) * w,
                "wv": rng.standard_normal((D, D)) * w, "wo": rng.standard_normal((D, D)) * w}
    return {}


def bind(adapter, point: Point, seed: int = 0) -> Callable[[], object]:
    """A no-argument call of the adapter's operation on native inputs made here, outside the clock."""
    arrays = inputs_for(point, seed)
    native = {k: (adapter.from_numpy(v, point.dtype) if v is not None else None)
              for k, v in arrays.items()}
    op = point.operation
    if op == "sdpa":
        return lambda: adapter.sdpa(native["query"], native["key"], native["value"],
                                    is_causal=point.causal)
    if op == "sdpa_vjp":
        return lambda: adapter.sdpa_vjp(native["query"], native["key"], native["value"],
                                        native["grad_output"], is_causal=point.causal)
    if op == "multi_head_attention":
        x = native["query_input"]
        weights = {k: native[k] for k in ("wq", "wk", "wv", "wo")}
        return lambda: adapter.multi_head_attention(x, x, weights, num_heads=point.H,
                                                    is_causal=point.causal)
    if op == "sinusoidal_encoding":
        return lambda: adapter.sinusoidal_encoding(point.L, point.E, dtype=point.dtype)
    raise ValueError(f"operation should be one of the four operations, but got {op!r}")


def synchronizer(adapter) -> Callable[[object], None]:
    """Synchronise every array of a result (tuples for gradients) with the adapter's own sync."""
    def sync(result):
        for value in (result if isinstance(result, (tuple, list)) else (result,)):
            adapter.synchronize(value)
    return sync


def supports(adapter, point: Point) -> str | None:
    """None when the adapter declares the point's operation and dtype, else the reason it is skipped."""
    caps = adapter.capabilities
    if caps.operations and point.operation not in caps.operations:
        return f"{adapter.name} does not declare {point.operation}"
    if point.operation == "sdpa_vjp" and not caps.gradients:
        return f"{adapter.name} declares no gradients"
    if point.dtype not in caps.dtypes:
        return f"{adapter.name} does not declare dtype {point.dtype}"
    return None


def run_point(adapter, point: Point, *, peak_gflops: dict, budget_s: float = 1.0,
              min_rounds: int = 5, seed: int = 0) -> dict:
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
    record = figures(adapter, point, stats, peak_gflops, memory.peak_rss_mb())
    # The process's baseline (frameworks loaded) before the point: peak - before is the point's own.
    record["rss_before_mb"] = None if before is None else round(before, 1)
    return {"point": record}


def figures(adapter, point: Point, stats: dict, peak_gflops: dict, peak_rss_mb: float) -> dict:
    """The point record from a timing: GFLOP/s, % of the dtype's peak (None when unknown)."""
    work = flops.point_work(point.operation, point.shape(), point.causal)
    record = {"adapter": adapter.name, "framework": adapter.framework,
              "operation": point.operation, "dtype": point.dtype, "B": point.B, "H": point.H,
              "L": point.L, "S": point.S, "E": point.E, "causal": point.causal,
              "time_s": stats["median"],
              "stats": {k: stats[k] for k in ("min", "mean", "stddev", "rounds")},
              "peak_rss_mb": round(peak_rss_mb, 1)}
    if point.operation == "sinusoidal_encoding":
        record.update(entries_per_s=work / stats["median"], gflops=None, pct_peak=None)
    else:
        gflops = work / stats["median"] / 1e9
        peak = peak_gflops.get(point.dtype)
        record.update(flops=work, gflops=gflops,
                      pct_peak=100.0 * gflops / peak if peak else None)
    return record


def run_sweep(adapters: Iterable, points: list[Point], *, peak_gflops: dict, budget_s: float = 1.0,
              progress: Callable[[str], None] | None = None) -> tuple[list, list]:
    """(measured points, skipped [{adapter, operation, dtype, reason}]) over adapters × points."""
    measured, skipped = [], []
    for adapter in adapters:
        seen_skips = set()
        for point in points:
            out = run_point(adapter, point, peak_gflops=peak_gflops, budget_s=budget_s)
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


def describe(p: dict) -> str:
    where = f"{p['adapter']:<18} {p['operation']:<20} {p['dtype']:<8} B={p['B']} H={p['H']} " \
            f"L=S={p['L']} E={p['E']}{' causal' if p['causal'] else ''}"
    if p.get("gflops") is None:
        return f"{where}  {p['time_s'] * 1e3:9.2f} ms  {p['entries_per_s'] / 1e6:9.1f} M entries/s"
    pct = f"{p['pct_peak']:5.1f} % peak" if p.get("pct_peak") is not None else "peak n/a"
    return f"{where}  {p['time_s'] * 1e3:9.2f} ms  {p['gflops']:7.1f} GFLOP/s  {pct}  " \
           f"{p['peak_rss_mb']:.0f} MiB"
