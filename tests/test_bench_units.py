"""Units of conformance/bench: flop counts (clause perf.flops), the scaling fit (perf.scaling),
timing discipline, speed statements and budgets, memory measurement. No timed assertions: the
machine is shared and noisy, so only structure, positivity and exact arithmetic are asserted.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from attnconf import flops
from attnconf.conformance.bench import checks, memory, peak, scaling, sweep, timing


def test_sdpa_flops_follow_the_spec_formula():
    assert flops.sdpa_flops(2, 3, 5, 7, 11) == 4 * 2 * 3 * 5 * 7 * 11
    assert flops.sdpa_flops(2, 3, 5, 7, 11, 13) == 2 * 2 * 3 * 5 * 7 * (11 + 13)
    assert flops.sdpa_flops(1, 8, 4096, 4096, 64, causal=True) == 2 * 8 * 4096 * 4096 * 64
    assert flops.sdpa_vjp_flops(1, 1, 4, 4, 2) == 2.5 * flops.sdpa_flops(1, 1, 4, 4, 2)
    D = 8 * 64
    assert flops.mha_flops(1, 10, 10, D, D, 8, 8, 64, 64) == (
        2 * 10 * D * 512 + 2 * 10 * D * 8 * 128 + 2 * 10 * 512 * D + flops.sdpa_flops(1, 8, 10, 10, 64))
    assert flops.encoding_entries(10 ** 6, 512) == 512e6


@pytest.mark.parametrize("alpha", [1.0, 2.0, 2.37])
def test_fit_recovers_a_synthetic_power_law(alpha):
    Ls = [128, 256, 512, 1024, 2048]
    times = [3e-9 * L ** alpha for L in Ls]
    fit = scaling.fit_exponent(Ls, times, min_time_s=0.0)
    assert fit["exponent"] == pytest.approx(alpha, abs=1e-12)
    assert fit["points"] == 5


def test_fit_ignores_points_under_one_millisecond():
    Ls = [128, 256, 512, 1024, 2048]
    times = [5e-4, 6e-4, 4e-3, 16e-3, 64e-3]     # overhead-dominated first two points
    fit = scaling.fit_exponent(Ls, times)
    assert fit["points"] == 3
    assert fit["exponent"] == pytest.approx(2.0, abs=1e-12)
    assert scaling.fit_exponent([128, 256], [1e-4, 2e-4])["exponent"] is None


def test_measure_warms_up_and_synchronises_every_call():
    calls, synced = [], []
    stats = timing.measure(lambda: calls.append(1) or len(calls), sync=synced.append, warmup=2,
                           min_rounds=5, budget_s=0.0)
    assert stats["rounds"] == 5 and len(calls) == 7 and synced == list(range(1, 8))
    assert 0 <= stats["min"] <= stats["median"] and stats["stddev"] >= 0


def _point(adapter, L, t, dtype="float32", op="sdpa", gflops=None, pct=None):
    return {"adapter": adapter, "framework": "numpy", "operation": op, "dtype": dtype, "B": 1,
            "H": 8, "L": L, "S": L, "E": 64, "causal": False, "time_s": t,
            "gflops": gflops if gflops is not None else flops.sdpa_flops(1, 8, L, L, 64) / t / 1e9,
            "pct_peak": pct}


def test_statements_are_reported_without_budgets_and_judged_with_them():
    pts = [_point("numpy-reference", L, 1e-9 * L ** 2, pct=10.0) for L in (512, 1024, 2048)]
    pts += [_point("fast", L, 1e-10 * L ** 2.5, pct=60.0) for L in (512, 1024, 2048)]
    fits = checks.scaling(pts)
    assert {f["adapter"]: round(f["exponent"], 6) for f in fits} == {"numpy-reference": 2.0, "fast": 2.5}
    plain = checks.statements(pts, fits)
    assert plain and all(s["status"] == "reported" for s in plain)
    assert checks.records(plain) == []
    judged = checks.statements(pts, fits, max_exponent=2.2, min_pct_peak=50.0, min_ratio_vs_reference=1.0)
    status = {(s["adapter"], s["what"].split(" ")[0]): s["status"] for s in judged}
    assert status[("fast", "scaling")] == "fail" and status[("numpy-reference", "scaling")] == "pass"
    assert status[("fast", "%")] == "pass" and status[("numpy-reference", "%")] == "fail"
    ratio = [s for s in judged if s["what"].startswith("throughput")]
    assert len(ratio) == 1 and ratio[0]["measured"] == pytest.approx(1e-9 * 2048 ** 2 / (1e-10 * 2048 ** 2.5))
    recs = checks.records(judged)
    assert recs and all(r["check"] == "speed" and r["status"] in ("pass", "fail") for r in recs)
    assert all(r["clauses"][0].startswith("perf.") for r in recs)


def test_peak_probe_is_positive_for_numpy_dtypes():
    probes = peak.peaks(("float64", "float32"), n=128, rounds=1)
    assert set(probes) >= {"float64", "float32"}
    assert all(p["gflops"] > 0 and p["library"] == "numpy" for p in probes.values())


def test_peak_memory_sees_an_allocation_after_reset():
    memory.reset_peak()
    before = memory.peak_rss_mb()
    block = np.ones(64 * 2 ** 20 // 8)            # 64 MiB touched
    after = memory.peak_rss_mb()
    del block
    assert after - before > 48


def test_child_peak_rss_reads_the_child_itself():
    rss, out = memory.child_peak_rss_mb(
        "import numpy as np; from attnconf.conformance.bench.memory import peak_rss_mb; "
        "a = np.ones(80 * 2**20 // 8); print('ATTNCONF_MAXRSS_KB=%d' % int(peak_rss_mb() * 1024))")
    assert 80 < rss < 400, rss


def test_grid_covers_the_issue_sweep():
    pts = sweep.grid(max_L=8192)
    sdpa32 = sorted(p.L for p in pts if p.operation == "sdpa" and p.dtype == "float32"
                    and not p.causal and p.E == 64 and p.H == 8)
    assert sdpa32 == [128, 256, 512, 1024, 2048, 4096, 8192]
    assert {p.E for p in pts if p.operation == "sdpa"} == {64, 128}
    assert {p.dtype for p in pts} >= {"float32", "float64", "bfloat16"}
    enc = [p for p in pts if p.operation == "sinusoidal_encoding"]
    assert max(p.L for p in enc) == 10 ** 6 and {p.E for p in enc} == {512}
    quick = sweep.grid(quick=True)
    assert max(p.L for p in quick if p.operation == "sdpa") == 512


def test_figures_use_the_median_and_the_dtype_peak():
    class A:
        name, framework = "x", "numpy"
    stats = {"median": 0.5, "min": 0.4, "mean": 0.6, "stddev": 0.1, "rounds": 5}
    p = sweep.figures(A, sweep.Point("sdpa", "float32", 1, 2, 256, 256, 64), stats, {"float32": 100.0}, 12.3)
    assert p["gflops"] == pytest.approx(flops.sdpa_flops(1, 2, 256, 256, 64) / 0.5 / 1e9)
    assert p["pct_peak"] == pytest.approx(p["gflops"])
    assert p["stats"]["rounds"] == 5 and p["peak_rss_mb"] == 12.3
    p = sweep.figures(A, sweep.Point("sdpa", "bfloat16", 1, 2, 256, 256, 64), stats, {}, 1.0)
    assert p["pct_peak"] is None and math.isfinite(p["gflops"])


def test_a_big_parent_does_not_inflate_the_childs_peak():
    # Linux carries ru_maxrss across fork and exec: a child of a big process inherits its figure.
    # The targets read the child's VmHWM instead; grow this process past 512 MiB to prove it.
    big = np.ones(600 * 2 ** 20 // 8)
    del big
    rss, _ = memory.child_peak_rss_mb(
        "from attnconf.conformance.bench.memory import peak_rss_mb; "
        "print('ATTNCONF_MAXRSS_KB=%d' % int(peak_rss_mb() * 1024))")
    assert rss < 400, rss


def test_rope_counts_bytes_moved_by_the_spec_formula():
    from attnconf import operations

    op = operations.get("rotary_embedding")
    assert op.work_unit == "byte"
    shape = sweep.Point("rotary_embedding", "float64", 1, 32, 8192, 8192, 128).shape()
    assert op.work(shape) == 2 * 32 * 8192 * 128 * 8 + 8192 * 8      # x read + out written + positions
    half = sweep.Point("rotary_embedding", "bfloat16", 2, 3, 5, 5, 4).shape()
    assert op.work(half) == 2 * 2 * 3 * 5 * 4 * 2 + 5 * 8
    pts = [p for p in sweep.grid(max_L=8192) if p.operation == "rotary_embedding"]
    assert {(p.B, p.H, p.E) for p in pts} == {(1, 32, 128)} and max(p.L for p in pts) == 8192
    assert {p.dtype for p in pts} == {"float32", "float64", "bfloat16"}


def test_copy_probe_is_positive_and_best_of_keeps_the_higher():
    from attnconf.conformance.bench import bandwidth

    probe = bandwidth.copy_bandwidth(nbytes=8 * 2 ** 20, rounds=2)
    assert probe["gbps"] > 0 and probe["bytes"] == 2 * 8 * 2 ** 20 and probe["rounds"] == 2
    assert bandwidth.best_of(None, {"gbps": 1.0}, {"gbps": 3.0})["gbps"] == 3.0
    assert bandwidth.best_of(None) is None


def test_byte_figures_are_gb_per_s_and_percent_of_the_copy_probe():
    class A:
        name, framework = "x", "numpy"
    stats = {"median": 0.25, "min": 0.2, "mean": 0.3, "stddev": 0.1, "rounds": 5}
    point = sweep.Point("rotary_embedding", "float32", 1, 2, 256, 256, 64)
    p = sweep.figures(A, point, stats, {}, 1.0, bandwidth_gbps=0.01)
    moved = 2 * 2 * 256 * 64 * 4 + 256 * 8
    assert p["bytes"] == moved and p["bytes_per_s"] == moved / 0.25
    assert p["gbps"] == pytest.approx(moved / 0.25 / 1e9)
    assert p["pct_bandwidth"] == pytest.approx(100 * p["gbps"] / 0.01)
    assert p["gflops"] is None and p["pct_peak"] is None and "GB/s" in sweep.describe(p)
    assert sweep.figures(A, point, stats, {}, 1.0)["pct_bandwidth"] is None


def test_a_rope_sweep_reports_its_ratio_to_the_copy_probe_of_the_same_run():
    from attnconf.adapters import registry
    from attnconf.conformance.bench.run import run_benchmarks

    adapter = registry.instantiate(registry.resolve(["numpy-reference"])[0])
    section = run_benchmarks([adapter], quick=True, operations=["rotary_embedding"])
    assert section["bandwidth_gbps"] > 0 and section["bandwidth_probe"]["gbps"] == section["bandwidth_gbps"]
    points = section["points"]
    assert [p["L"] for p in points] == [128, 256, 512]
    for p in points:
        assert p["gbps"] > 0
        assert p["pct_bandwidth"] == pytest.approx(100 * p["gbps"] / section["bandwidth_gbps"])
    assert section["scaling"] == [] and section["statements"] == []   # bytes: no flop statements


def test_rope_target_is_a_ratio_of_one_run():
    from attnconf.conformance.bench import targets

    r = targets.rope_target(rounds=1, shape=dict(B=1, H=2, T=256, E=16))
    assert r["bytes"] == 2 * 2 * 256 * 16 * 8 + 256 * 8 and len(r["copies_gbps"]) == 1
    assert r["pct_bandwidth"] == pytest.approx(100 * r["gbps"] / r["copy_gbps"])
    assert r["copy_gbps"] == max(r["copies_gbps"]) and r["time_s"] == min(r["times_s"])
    assert r["status"] in ("PASS", "FAIL") and r["target_pct_bandwidth"] == 25.0
    assert "% of copy bandwidth" in targets.format_report(None, None, r)[0]
