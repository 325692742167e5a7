"""`attnconf bench`: --quick writes the results JSON with a sane benchmarks section; budgets and
usage errors. No timed assertions (shared, noisy machine): structure, positivity, consistency.
"""
from __future__ import annotations

import json

import pytest

from attnconf.cli import main
from attnconf import flops


@pytest.fixture(scope="module")
def quick_doc(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    assert main(["bench", "--quick", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_quick_run_writes_a_valid_results_document(quick_doc):
    from attnconf.conformance.results.files import validate

    validate(quick_doc)
    bench = quick_doc["benchmarks"]
    assert {"machine", "peak_gflops", "points", "scaling"} <= set(bench)
    machine = bench["machine"]
    assert machine["cores"] >= 1 and machine["threads"] >= 1 and machine["cpu"] and machine["numpy blas"]
    assert bench["peak_gflops"]["float64"] > 0 and bench["peak_gflops"]["float32"] > 0


def test_quick_points_are_positive_and_consistent(quick_doc):
    points = quick_doc["benchmarks"]["points"]
    ops = {p["operation"] for p in points}
    assert {"sdpa", "sinusoidal_encoding"} <= ops
    for p in points:
        assert p["adapter"] == "numpy-reference"
        assert p["time_s"] > 0 and p["stats"]["rounds"] >= 5 and p["stats"]["min"] <= p["time_s"]
        assert p["peak_rss_mb"] > 0
        if p["operation"] == "sdpa":
            work = flops.sdpa_flops(p["B"], p["H"], p["L"], p["S"], p["E"], causal=p["causal"])
            assert p["gflops"] == pytest.approx(work / p["time_s"] / 1e9)
            peak = quick_doc["benchmarks"]["peak_gflops"][p["dtype"]]
            assert p["pct_peak"] == pytest.approx(100 * p["gflops"] / peak)
        if p["operation"] == "sinusoidal_encoding":
            assert p["entries_per_s"] > 0


def test_scaling_series_and_statements_without_budgets(quick_doc):
    bench = quick_doc["benchmarks"]
    fits = [f for f in bench["scaling"] if f["operation"] == "sdpa" and not f["causal"]]
    assert fits and [pt["L"] for pt in fits[0]["points"]] == [128, 256, 512]
    assert all(s["status"] == "reported" for s in bench["statements"])
    assert quick_doc["results"] == []          # nothing judged without a budget


def test_a_budget_that_cannot_be_met_fails_the_run(tmp_path, capsys):
    path = tmp_path / "b.json"
    code = main(["bench", "--quick", "--operation", "sdpa", "--min-pct-peak", "1000", "--json", str(path)])
    assert code == 1
    doc = json.loads(path.read_text())
    assert doc["results"] and all(r["check"] == "speed" for r in doc["results"])
    assert any(r["status"] == "fail" for r in doc["results"])
    assert "[fail]" in capsys.readouterr().out


def test_quick_reference_targets_print_ratios_and_verdicts(tmp_path, capsys):
    path = tmp_path / "t.json"
    main(["bench", "--quick", "--reference-targets", "--json", str(path)])
    out = capsys.readouterr().out
    assert "% of peak" in out and "peak RSS" in out
    assert ("PASS" in out) or ("FAIL" in out)
    targets = json.loads(path.read_text())["benchmarks"]["reference_targets"]
    assert targets["speed"]["pct_peak"] > 0 and targets["speed"]["dgemm_peak_gflops"] > 0
    assert 0 < targets["memory"]["peak_rss_mb"] < 1024
    assert "% of copy bandwidth" in out and targets["rope"]["pct_bandwidth"] > 0
    # the packed reference against the contiguous one on the same work (issue 21): a printed ratio
    assert "packed reference (sdpa_varlen) / contiguous (sdpa_lse)" in out
    assert targets["varlen"]["ratio"] > 0 and targets["varlen"]["target_ratio"] == 1.5
    assert "target paged" in out and "ratio" in out and targets["paged"]["ratio"] > 0


@pytest.mark.parametrize("argv, message", [
    (["bench", "--max-L", "64"], "--max-L should be >= 128"),
    (["bench", "--quick", "--operation", "conv"], "--operation should be one of"),
    (["bench", "--quick", "--adapter", "no-such-adapter"], "adapter should be one of"),
    (["bench", "--quick", "--dtype", "float8"], "--dtype should list names among"),
])
def test_usage_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("attnconf: ") and message in err and "\n" not in err
