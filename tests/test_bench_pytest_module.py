"""The pytest-benchmark module runs as documented (`pytest --pyargs attnconf.conformance.bench
--benchmark-json …`) and its JSON carries the figures in extra_info. Structure only: no timing
is asserted on this shared machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("pytest_benchmark")


def test_pyargs_run_writes_benchmark_json_with_figures(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, ATTNCONF_BENCH_QUICK="1", ATTNCONF_BENCH_OPERATIONS="sdpa,sinusoidal_encoding,rotary_embedding")
    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "attnconf.conformance.bench", "-q",
                           "-p", "no:cacheprovider", f"--benchmark-json={out}"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    benches = json.loads(out.read_text())["benchmarks"]
    sdpa = [b for b in benches if b["extra_info"]["operation"] == "sdpa"]
    assert len(sdpa) == 6 and all(b["stats"]["rounds"] == 5 for b in sdpa)
    for b in sdpa:
        info = b["extra_info"]
        assert info["gflops"] > 0 and info["pct_peak"] > 0 and info["flops"] > 0
        assert info["machine"]["threads"] >= 1
    enc = [b for b in benches if b["extra_info"]["operation"] == "sinusoidal_encoding"]
    assert enc and all(b["extra_info"]["entries_per_s"] > 0 for b in enc)
    rope = [b["extra_info"] for b in benches if b["extra_info"]["operation"] == "rotary_embedding"]
    assert rope and all(i["gbps"] > 0 and i["copy_gbps"] > 0 for i in rope)
    assert all(i["pct_bandwidth"] == pytest.approx(100 * i["gbps"] / i["copy_gbps"]) for i in rope)


def test_a_conformance_run_does_not_collect_the_benchmarks(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "attnconf.conformance", "--collect-only",
                           "-q", "-p", "no:cacheprovider"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=600, env={k: v for k, v in os.environ.items()
                                            if k != "ATTNCONF_BENCH_ADAPTERS"})
    assert "collected" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert "test_speed" not in done.stdout
