"""Expectations through `attnconf run` and `attnconf expectations update`, with a zoo plug-in
whose failures are known: matching failures become xfail (exit 0), a stale entry is reported and
fails the run only under --strict, and `update` writes a file that makes the next run expected.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from attnconf.conformance.results.files import read_results

TESTS = Path(__file__).resolve().parent
PLUGIN = "zoo.sdpa:nan_output"
RUN = ["run", "--no-checks", "--sdpa", PLUGIN, "--framework", "numpy", "--select", "sdpa/size_*",
       "--dtype", "float64"]


def attnconf(*args):
    return subprocess.run([sys.executable, "-m", "attnconf", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(TESTS)), timeout=300)


def write(path, *entries):
    path.write_text(json.dumps({"format": "attnconf-expectations", "version": 1, "expectations": list(entries)}))
    return path


NAN = {"adapter": PLUGIN, "case": "sdpa/size_*", "status": "fail", "reason": "the zoo plants a NaN in element 0"}
STALE = {"adapter": PLUGIN, "case": "sdpa/gqa_*", "reason": "a case this run never selects"}


def test_expected_failures_are_xfail_and_the_run_conforms(tmp_path):
    exp = write(tmp_path / "e.json", NAN)
    r = attnconf(*RUN, "--expectations", str(exp), "--json", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = read_results(tmp_path / "r.json")
    assert {rec["status"] for rec in doc["results"]} == {"xfail"}
    rec = doc["results"][0]
    assert rec["expected"]["status"] == "fail" and rec["expected"]["reason"] == NAN["reason"]
    assert "NaN" in rec["message"]


def test_stale_entry_is_reported_and_fails_only_under_strict(tmp_path):
    exp = write(tmp_path / "e.json", NAN, {**STALE, "case": "sdpa/size_l1_s1_e1", "dtype": "float32"},
                {**STALE, "adapter": "numpy-reference", "case": "sdpa/size_*"})
    # numpy-reference runs too and passes where the third entry expects a failure: "now passes"
    args = [*RUN, "--adapter", "numpy-reference", "--expectations", str(exp), "--json", str(tmp_path / "r.json")]
    r = attnconf(*args, "--dtype", "float64,float32")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no longer hold" in r.stdout and "passes" in r.stdout
    doc = read_results(tmp_path / "r.json")
    kinds = Counter(f["kind"] for f in doc["expectation_findings"])
    assert kinds["passes"] >= 1 and kinds["status_differs"] == 0
    r = attnconf(*args, "--dtype", "float64,float32", "--strict")
    assert r.returncode == 1, r.stdout + r.stderr


def test_entry_matching_nothing_fails_strict(tmp_path):
    exp = write(tmp_path / "e.json", {**NAN, "case": "sdpa/*", "status": ["fail", "error"]},
                {**STALE, "case": "sdpa/never_a_case"})
    # no --select: a run restricted by --select only reports such entries as not exercised
    full = [a for a in RUN if a not in ("--select", "sdpa/size_*")]
    r = attnconf(*full, "--expectations", str(exp), "--json", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sdpa/never_a_case" in r.stdout
    r = attnconf(*full, "--expectations", str(exp), "--json", str(tmp_path / "r.json"), "--strict")
    assert r.returncode == 1, r.stdout + r.stderr
    (finding,) = read_results(tmp_path / "r.json")["expectation_findings"]
    assert finding["kind"] == "unmatched"


def test_update_writes_a_file_that_expects_the_run(tmp_path):
    r = attnconf(*RUN, "--no-expectations", "--json", str(tmp_path / "r.json"))
    assert r.returncode == 1
    r = attnconf("expectations", "update", "--results", str(tmp_path / "r.json"), "--out", str(tmp_path / "new.json"))
    assert r.returncode == 0, r.stderr
    assert "TODO" in r.stdout
    entries = json.loads((tmp_path / "new.json").read_text())["expectations"]
    assert entries and all(e["adapter"] == PLUGIN and e["reason"].startswith("TODO") for e in entries)
    r = attnconf(*RUN, "--expectations", str(tmp_path / "new.json"), "--json", str(tmp_path / "r2.json"), "--strict")
    assert r.returncode == 0, r.stdout + r.stderr
    assert {rec["status"] for rec in read_results(tmp_path / "r2.json")["results"]} == {"xfail"}
