"""pytest-benchmark module: the sweep of `attnconf bench` as benchmark tests.

Run:  pytest --pyargs attnconf.conformance.bench --benchmark-json reports/bench.json
Environment (pytest options cannot be added from an installed package's test module):
  ATTNCONF_BENCH_ADAPTERS  comma-separated adapter names (default: numpy-reference)
  ATTNCONF_BENCH_MAX_L     largest L = S (default 1024)
  ATTNCONF_BENCH_QUICK     "1" for the --quick grid
  ATTNCONF_BENCH_OPERATIONS comma-separated operations (default every registered one)
Each benchmark's extra_info holds flops, GFLOP/s, % of the dtype's matmul peak (probed once per
session; RoPE: bytes, GB/s and % of the copy bandwidth instead, perf.bytes), the machine and the threads, so pytest-benchmark's JSON carries the same figures as
the results JSON. Timing: 1 warm-up round (jit compilation), then 5 rounds, each synchronised.
Must not: assert on speed (clause perf.*: reported, not judged).
"""
from __future__ import annotations

import functools
import os

import pytest

from attnconf import operations
from attnconf.conformance.bench import bandwidth, flops, machine, memory, peak, sweep
from attnconf.errors import Unsupported

pytest.importorskip("pytest_benchmark")

ADAPTERS = [a.strip() for a in os.environ.get("ATTNCONF_BENCH_ADAPTERS", "numpy-reference").split(",")
            if a.strip()]
_OPS = tuple(o.strip() for o in os.environ.get("ATTNCONF_BENCH_OPERATIONS", "").split(",") if o.strip())
POINTS = sweep.grid(quick=os.environ.get("ATTNCONF_BENCH_QUICK") == "1",
                    max_L=int(os.environ.get("ATTNCONF_BENCH_MAX_L", "1024")),
                    max_positions=100_000, **({"operations": _OPS} if _OPS else {}))


def _point_id(p: sweep.Point) -> str:
    causal = "-causal" if p.causal else ""
    return f"{p.operation}-{p.dtype}-B{p.B}-H{p.H}-L{p.L}-E{p.E}{causal}"


@functools.lru_cache(maxsize=None)
def _adapter(name: str):
    from attnconf.adapters import registry

    specs = registry.resolve([name], isolated=False)
    return registry.instantiate(specs[0])


@pytest.fixture(scope="session")
def matmul_peaks() -> dict:
    dtypes = sorted({p.dtype for p in POINTS})
    return {d: r["gflops"] for d, r in peak.peaks(dtypes).items()}


@pytest.fixture(scope="session")
def copy_gbps() -> float | None:
    """The copy probe (perf.bytes), once per session, when a point counts bytes."""
    if any(operations.get(p.operation).work_unit == "byte" for p in POINTS):
        return bandwidth.copy_bandwidth()["gbps"]
    return None


@pytest.mark.parametrize("point", POINTS, ids=_point_id)
@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_speed(benchmark, adapter_name, point, matmul_peaks, copy_gbps):
    try:
        adapter = _adapter(adapter_name)
    except Exception as exc:  # an unavailable framework is a skip, with the reason
        pytest.skip(f"{adapter_name}: {exc}")
    reason = sweep.supports(adapter, point)
    if reason:
        pytest.skip(reason)
    sync = sweep.synchronizer(adapter)
    try:
        call = sweep.bind(adapter, point)
        sync(call())                                  # warm-up / jit outside the timed rounds
    except Unsupported as exc:
        pytest.skip(exc.reason)
    memory.reset_peak()
    benchmark.pedantic(lambda: sync(call()), rounds=5, warmup_rounds=1, iterations=1)
    median = benchmark.stats.stats.median
    work = flops.point_work(point.operation, point.shape(), point.causal)
    info = {"adapter": adapter.name, "framework": adapter.framework, "operation": point.operation,
            "dtype": point.dtype, "B": point.B, "H": point.H, "L": point.L, "S": point.S,
            "E": point.E, "causal": point.causal, "peak_rss_mb": round(memory.peak_rss_mb(), 1),
            "machine": machine.machine_info()}
    unit = operations.get(point.operation).work_unit
    if unit != "flop":
        info[sweep.rate_key(unit)] = work / median
        if unit == "byte":
            gbps = work / median / 1e9
            info.update(bytes=work, gbps=gbps, copy_gbps=copy_gbps,
                        pct_bandwidth=100.0 * gbps / copy_gbps if copy_gbps else None)
    else:
        gflops = work / median / 1e9
        peak_gf = matmul_peaks.get(point.dtype)
        info.update(flops=work, gflops=gflops, pct_peak=100.0 * gflops / peak_gf if peak_gf else None,
                    peak_gflops=peak_gf)
    benchmark.extra_info.update(info)
