"""Expectation entries that name an unknown clause or adapter are reported by every run, and fail
it under --strict (a misspelled entry would otherwise expect nothing, silently)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from attnconf.adapters import registry
from attnconf.conformance.judging.expectations import Expectation, unknown_names


def test_unknown_clause_and_adapter_are_findings():
    entries = [Expectation(adapter="torch-math", clause="sdpa.causl.*", reason="typo", source="x#0"),
               Expectation(adapter="torch-mathh", clause="sdpa.causal.*", reason="typo", source="x#1"),
               Expectation(adapter="my-plugin", reason="a plug-in of this run", source="x#2"),
               Expectation(adapter="jax-*", clause="sdpa.fully_masked", reason="fine", source="x#3")]
    found = [(f.kind, f.entry.source) for f in unknown_names(entries, [*registry.BUNDLED, "my-plugin"])]
    assert found == [("unknown_clause", "x#0"), ("unknown_adapter", "x#1")]


@pytest.mark.parametrize("strict, code", [(False, 0), (True, 1)])
def test_a_run_reports_them_and_strict_fails(tmp_path, strict, code):
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"format": "attnconf-expectations", "version": 1, "expectations": [
        {"adapter": "numpy-reference", "clause": "sdpa.no_such_clause", "reason": "typo"},
        {"adapter": "numpy-referense", "reason": "typo"}]}))
    cmd = [sys.executable, "-m", "attnconf", "run", "--adapter", "numpy-reference", "--no-checks",
           "--select", "sdpa/causal_tl_square*", "--dtype", "float64", "--json", str(tmp_path / "r.json"),
           "--expectations", str(path)] + (["--strict"] if strict else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == code, r.stdout[-2000:] + r.stderr[-2000:]
    assert "unknown_clause" in r.stdout and "unknown_adapter" in r.stdout, r.stdout
    kinds = {f["kind"] for f in json.loads((tmp_path / "r.json").read_text())["expectation_findings"]}
    assert {"unknown_clause", "unknown_adapter"} <= kinds
