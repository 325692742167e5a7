"""Restricted implementations get real coverage (issue 22): many real kernels take only L = S, no
GQA, boolean masks only or no float64, and decline the rest. For every sdpa clause some golden
cases and invariant draws fit each restriction, so such a kernel is still judged on every clause
it claims (tests/zoo/restricted.py holds the restricted plug-ins: the reference, declining)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnconf import spec
from attnconf.reference.golden import load_cases

TESTS = Path(__file__).resolve().parent
ENV = dict(os.environ, PYTHONPATH=str(TESTS))
# clauses no sdpa golden case of the forward pass can carry, or that a restriction removes
NO_FORWARD_CASE = {"sdpa.grad", "sdpa.opt.mapping"}
REMOVED = {"square": set(), "no_gqa": {"sdpa.gqa"}, "bool_masks": {"sdpa.mask.float"},
           "all": {"sdpa.gqa", "sdpa.mask.float"}}


def _fits(case, restriction: str) -> bool:
    q, k = case.inputs["query"], case.inputs["key"]
    mask = case.inputs.get("attn_mask")
    square = q.shape[-2] == k.shape[-2]
    no_gqa = q.shape[1] == k.shape[1]
    bool_mask = mask is None or mask.dtype == np.bool_
    return {"square": square, "no_gqa": no_gqa, "bool_masks": bool_mask,
            "all": square and no_gqa and bool_mask}[restriction]


@pytest.mark.parametrize("restriction", sorted(REMOVED))
def test_every_sdpa_clause_has_a_golden_case_each_restriction_fits(restriction):
    cases = load_cases("sdpa/*")
    cited = {c for case in cases for c in case.clauses if c.startswith("sdpa.")}
    fitting = {c for case in cases if _fits(case, restriction) for c in case.clauses}
    missing = sorted(cited - fitting - REMOVED[restriction])
    assert not missing, f"no golden case fits the {restriction} restriction for {missing}"
    # the sdpa clauses of the forward operation (sdpa.lse.*, sdpa.merge.* are sdpa_lse's and
    # merge_attention_states', whose cases live under their own prefixes)
    forward = {c["id"] for c in spec.load_index()["clauses"] if c["id"].startswith("sdpa.") and "sdpa" in c["operations"]}
    assert forward - cited <= NO_FORWARD_CASE


def test_window_and_key_lengths_meet_at_l_equals_s():
    """The pair a windowed library gets wrong (the mean of the values for a row whose window holds
    only padding keys) and the other option pairs, each at L = S without GQA."""
    pairs = {}
    for case in load_cases("sdpa/*"):
        if _fits(case, "all"):
            opts = {c for c in case.clauses if c.startswith("sdpa.opt.") and c != "sdpa.opt.positions"}
            for a in opts:
                for b in opts:
                    pairs[(a, b)] = pairs.get((a, b), 0) + 1
    for pair in [("sdpa.opt.window", "sdpa.opt.key_lengths"), ("sdpa.opt.window", "sdpa.opt.softcap"),
                 ("sdpa.opt.window", "sdpa.opt.query_lengths"), ("sdpa.opt.window", "sdpa.opt.sinks"),
                 ("sdpa.opt.window", "sdpa.opt.alibi"), ("sdpa.opt.sinks", "sdpa.opt.key_lengths"),
                 ("sdpa.opt.alibi", "sdpa.opt.key_lengths"), ("sdpa.opt.key_lengths", "sdpa.opt.query_lengths")]:
        assert pairs.get(pair), f"no L = S case combines {pair}"


def run(tmp_path, name, *args):
    path = tmp_path / f"{name}.json"
    r = subprocess.run([sys.executable, "-m", "attnconf", "run", "--sdpa", f"zoo.restricted:{name}", "--framework",
                        "numpy", "--no-isolation", "--no-expectations", "--json", str(path), *args],
                       capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path)
    return r, json.loads(path.read_text())


def test_a_kernel_with_every_restriction_is_judged_on_every_clause_it_claims(tmp_path):
    """Measured before these cases and draws (float32, in-process): 69 of 634 records judged,
    none for sdpa.scale.explicit, mask.broadcast, softcap, sinks, alibi, decode, key/query lengths
    or positions, nor for inv.key_permutation, inv.masked_keys and inv.determinism."""
    r, doc = run(tmp_path, "sdpa_all_restrictions", "--dtype", "float32")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    judged = [x for x in doc["results"] if x["status"] != "skip" and x["operation"] == "sdpa"]
    clauses = {c for x in judged if x["check"] == "agreement" for c in x["clauses"]}
    claimed = ({c["id"] for c in spec.load_index()["clauses"] if c["id"].startswith("sdpa.") and "sdpa" in c["operations"]}
               - NO_FORWARD_CASE - REMOVED["all"])
    assert claimed - clauses == set(), f"judged on no record of {sorted(claimed - clauses)}"
    examples = {x["case"].split("/", 1)[1]: x["metrics"].get("examples", 1) for x in judged if x["check"] == "invariant"}
    needed = {i["id"] for i in spec.clauses() if i["id"].startswith("inv.") and "sdpa" in (i.get("operations") or ())}
    needed -= {"inv.gqa_repeat", "inv.mask_equivalence"}     # GQA itself; bool against float masks
    assert {i for i in needed if examples.get(i, 0) >= 1} == needed, \
        f"invariants with no judged example: {sorted(i for i in needed if not examples.get(i))}"


def test_averaging_a_row_whose_window_holds_only_padding_fails(tmp_path):
    """A square-only kernel that masks with a finite value (the mean of the values for a row that
    sees only padding keys, claiming the policy zero): before these, no L = S case combined a window
    with key_lengths, and no invariant drew them together."""
    r, doc = run(tmp_path, "sdpa_square_mean_when_empty", "--dtype", "float32", "--select",
                 "sdpa/square_window_key_lengths_*,invariant/inv.opt.padding_keys")
    status = {x["case"]: x["status"] for x in doc["results"]}
    assert r.returncode == 1
    assert status == {"sdpa/square_window_key_lengths_causal": "fail",
                      "sdpa/square_window_key_lengths_noncausal": "fail",
                      "invariant/inv.opt.padding_keys": "fail"}, status
