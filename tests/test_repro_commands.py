"""Every record's repro command reruns exactly that record (conformance/results/repro.py).

One `attnconf run` makes a record of every kind: agreement on sdpa, on a gradient (sdpa_vjp) and
on a multi-head layer, an invariant (one passing, one failing with its counterexample), a
profile aspect, and records of plug-ins (a bare function, an adapter class `PKG.MOD:CLASS`),
under --no-expectations, --level strict, --seed and --timeout, which each repro must carry. Each
repro is run as it stands (only --json appended) and must give that record alone: the same
adapter, case, dtype and check with the same status, and for an invariant the same examples and
counterexample. Implementations are NumPy ones, so the runs take seconds.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from attnconf.conformance.results import repro

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "tests.examples.example_numpy_sdpa:sdpa"
BROKEN_MASK = "attnconf.conformance.known_bad.mask:InvertedBoolMask"
SELECT = "sdpa/gqa_h4_hkv2,sdpa_vjp/basic_l5_s7,mha/self_bias_d16_h2,invariant/inv.masked_keys,profile/gqa"
OPTIONS = ["--no-expectations", "--level", "strict", "--seed", "5", "--timeout", "45", "--dtype", "float64"]

# (test id, adapter, case, check): the record of the first run whose repro is rerun
KINDS = [
    ("agreement-sdpa", "numpy-reference", "sdpa/gqa_h4_hkv2", "agreement"),
    ("agreement-sdpa_vjp-gradient", "numpy-reference", "sdpa_vjp/basic_l5_s7", "agreement"),
    ("agreement-multi_head_attention", "numpy-reference", "mha/self_bias_d16_h2", "agreement"),
    ("invariant-pass", "numpy-reference", "invariant/inv.masked_keys", "invariant"),
    ("profile", "numpy-reference", "profile/gqa", "profile"),
    ("function-plugin-agreement", FUNCTION, "sdpa/gqa_h4_hkv2", "agreement"),
    ("function-plugin-invariant", FUNCTION, "invariant/inv.masked_keys", "invariant"),
    ("class-plugin-failing-invariant", "known-bad/inverted-bool-mask", "invariant/inv.masked_keys", "invariant"),
]


def _attnconf_run(args: list[str], json_path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "attnconf", "run", *args, "--json", str(json_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), (
        f"attnconf run {shlex.join(args)} should exit 0 or 1, but got {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(json_path.read_text(encoding="utf-8"))


def _key(rec: dict) -> tuple:
    return rec["adapter"], rec["case"], rec["dtype"], rec["check"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("first") / "r.json"
    doc = _attnconf_run(["--adapter", "numpy-reference", "--adapter", BROKEN_MASK, "--sdpa", FUNCTION,
                         "--framework", "numpy", "--select", SELECT, *OPTIONS], path)
    return {_key(r): r for r in doc["results"]}


@pytest.mark.parametrize("adapter, case, check", [k[1:] for k in KINDS], ids=[k[0] for k in KINDS])
def test_repro_reruns_exactly_that_record(first_run, adapter, case, check, tmp_path):
    rec = first_run.get((adapter, case, "float64", check))
    assert rec is not None, f"the first run should make a {check} record of {adapter} {case}, but got {sorted(first_run)}"
    argv = shlex.split(rec["repro"])
    assert argv[:2] == ["attnconf", "run"], f"repro should be an `attnconf run` command, but got {rec['repro']!r}"
    for option in ("--no-expectations", "--level strict", "--timeout 45"):
        assert option in rec["repro"], f"repro should carry {option}, but got {rec['repro']!r}"
    if check == "invariant":
        assert "--seed 5" in rec["repro"], f"an invariant's repro should carry its seed, but got {rec['repro']!r}"
    doc = _attnconf_run(argv[2:], tmp_path / "again.json")
    again = [r for r in doc["results"]]
    assert [_key(r) for r in again] == [_key(rec)], (
        f"{rec['repro']} should rerun exactly {_key(rec)}, but got {[_key(r) for r in again]}")
    assert again[0]["status"] == rec["status"], (
        f"{rec['repro']} should give status {rec['status']}, but got {again[0]['status']}: {again[0]['message']}")
    if check == "invariant":   # the same examples are drawn, the same counterexample found
        assert again[0]["metrics"] == rec["metrics"] and again[0]["message"] == rec["message"]


def test_the_failing_invariant_record_names_its_counterexample(first_run):
    rec = first_run[("known-bad/inverted-bool-mask", "invariant/inv.masked_keys", "float64", "invariant")]
    assert rec["status"] == "fail", f"an inverted bool mask should fail inv.masked_keys, but got {rec['status']}"
    assert rec["metrics"]["counterexample"] and "--adapter " + BROKEN_MASK in rec["repro"]


def test_every_known_id_has_a_select_matching_it_alone():
    from attnconf.conformance.checks import invariants, profile

    # each kind's builder passes the ids of its kind (results do not import the checks)
    kinds = {"golden": repro.known_ids(), "invariant": tuple(invariants.record_ids()),
             "profile": tuple(profile.record_ids())}
    ids = [i for group in kinds.values() for i in group]
    assert "sdpa/gqa_h4_hkv2" in ids and "invariant/inv.convex_hull" in ids and "profile/gqa" in ids
    known = {i: group for group in kinds.values() for i in group}
    for case_id in ids:
        matched = [other for other in ids if repro.selects(repro.select_for(case_id, known[case_id]), other)]
        assert matched == [case_id], f"select {repro.select_for(case_id)!r} should match {case_id} alone, but got {matched}"


@pytest.mark.parametrize("select, case_id, selected", [
    ("invariant/inv.convex_hull", "invariant/inv.convex_hull", True),
    ("inv.convex", "invariant/inv.convex_hull", True),
    ("invariant/*", "invariant/inv.enc.rotation", True),
    ("profile/*", "profile/fully_masked", True),
    ("fully_masked", "profile/fully_masked", True),
    ("fully_masked", "sdpa/fully_masked_bool_rows", True),
    ("sdpa/*", "invariant/inv.convex_hull", False),
    ("sdpa/*", "profile/gqa", False),
    ("sdpa/causal_tl,profile/gqa", "profile/gqa", True),
])
def test_select_means_the_same_for_every_kind_of_record(select, case_id, selected):
    assert repro.selects(select, case_id) is selected, (
        f"--select {select!r} should {'' if selected else 'not '}select {case_id}")


def test_a_select_that_matches_only_checks_runs_no_golden_case(tmp_path):
    doc = _attnconf_run(["--adapter", "numpy-reference", "--select", "invariant/inv.finite,profile/default_scale",
                         "--dtype", "float64"], tmp_path / "r.json")
    assert sorted(_key(r) for r in doc["results"]) == [
        ("numpy-reference", "invariant/inv.finite", "float64", "invariant"),
        ("numpy-reference", "profile/default_scale", "float64", "profile")]


def test_a_select_that_matches_nothing_anywhere_is_one_usage_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "attnconf", "run", "--adapter", "numpy-reference", "--select",
                           "invariant/inv.no_such_clause", "--json", str(tmp_path / "r.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "--select should match at least one case id" in lines[0], (
        f"should exit 2 with one line, but got {proc.returncode}: {proc.stderr[-1000:]}")
