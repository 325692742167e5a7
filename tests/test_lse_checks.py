"""The invariants (inv.lse.*, inv.merge.*) and profile aspects (sdpa.lse.*, sdpa.merge.*) of the
log-sum-exp and merged states: the reference and the zoo's control pass them, each known-bad
implementation of known_bad/lse.py is seen by the aspect and the invariant meant for it."""
from __future__ import annotations

import pytest

from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance.checks import invariants, profile
from attnconf.conformance.known_bad import control, lse as bad

ASPECTS = ("lse_base", "lse_empty", "lse_sinks", "merge_empty", "merge_overflow", "merge_normalised")
CANONICAL = {"lse_base": "e", "lse_empty": "-inf", "lse_sinks": "spec", "merge_empty": "spec",
             "merge_overflow": "stable", "merge_normalised": "spec"}


def _aspects(adapter):
    return {name: profile.aspect(name).probe(adapter, "float64") for name in ASPECTS}


@pytest.mark.parametrize("adapter", [NumpyReferenceAdapter(), control()()], ids=["numpy-reference", "control"])
def test_correct_implementations_show_the_canonical_profile(adapter):
    assert {n: v["value"] for n, v in _aspects(adapter).items()} == CANONICAL


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
@pytest.mark.parametrize("adapter", [NumpyReferenceAdapter(), control()()], ids=["numpy-reference", "control"])
def test_correct_implementations_pass_the_invariants(adapter, dtype):
    recs = invariants.check(adapter, dtype, select="inv.lse,inv.merge", max_examples=3)
    assert len(recs) == 7
    assert all(r["status"] == "pass" for r in recs), [r["message"] for r in recs if r["status"] != "pass"]


@pytest.mark.parametrize("cls,aspect,value", [
    (bad.LseBase2, "lse_base", "base2"), (bad.LseUnscaled, "lse_base", "unscaled"),
    (bad.LseEmptyFinite, "lse_empty", "finite"), (bad.LseEmptyNaN, "lse_empty", "nan"),
    (bad.LseIgnoringSinks, "lse_sinks", "ignored"), (bad.MergeNoMax, "merge_overflow", "overflow"),
    (bad.MergeEmptyNaN, "merge_empty", "nan"), (bad.MergeUnnormalised, "merge_normalised", "unnormalised"),
])
def test_each_bug_shows_its_named_alternative(cls, aspect, value):
    assert profile.aspect(aspect).probe(cls(), "float64")["value"] == value


@pytest.mark.parametrize("cls,clause", [
    (bad.LseBase2, "inv.lse.key_split"), (bad.LseBase2, "inv.lse.shift"), (bad.LseUnscaled, "inv.lse.key_split"),
    (bad.LseIgnoringSinks, "inv.lse.sinks"), (bad.MergeEmptyNaN, "inv.merge.identical"),
    (bad.MergeUnnormalised, "inv.merge.identical"),
])
def test_invariants_catch_the_bugs_they_are_for(cls, clause):
    recs = invariants.check(cls(), "float32", select=clause, max_examples=3, shrink=False)
    assert [r["status"] for r in recs] == ["fail"], [r["message"] for r in recs]
