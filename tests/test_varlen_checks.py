"""The sdpa_varlen checks against implementations whose behaviour is known: numpy-reference and the
zoo's control pass every packed invariant and profile aspect; each packed known-bad implementation
(conformance/known_bad/varlen.py) is caught by the check written for its bug."""
from __future__ import annotations

import pytest

from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance import calibration, detection, known_bad
from attnconf.conformance.checks import invariants, profile
from attnconf.conformance.known_bad import varlen as bad
from attnconf.reference.golden import load_cases

FAMILIES = ("varlen-packed", "varlen-causal", "varlen-empty", "varlen-options")


@pytest.fixture(scope="module")
def golden():
    return load_cases("sdpa_varlen/*")


@pytest.fixture(scope="module")
def randoms():
    return [calibration.random_case(f, s) for f in FAMILIES for s in range(2)]


@pytest.mark.parametrize("adapter", [NumpyReferenceAdapter(), known_bad.control()()], ids=["numpy-reference", "control"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_correct_implementations_hold_every_packed_invariant(adapter, dtype):
    records = invariants.check(adapter, dtype, select="inv.varlen")
    assert len(records) == 5
    assert all(r["status"] == "pass" for r in records), [(r["case"], r["message"]) for r in records]


@pytest.mark.parametrize("adapter", [NumpyReferenceAdapter(), known_bad.control()()], ids=["numpy-reference", "control"])
def test_correct_implementations_profile_as_the_spec(adapter):
    found = profile.detect(adapter)
    assert found["varlen_empty"]["value"] == "zero" and found["varlen_causal"]["value"] == "bottom_right"


def test_control_is_not_caught_on_packed_cases(golden, randoms):
    assert detection.detect_one(known_bad.control()(), golden=golden, random_cases=randoms) == []


@pytest.mark.parametrize("cls, where", [
    (bad.CuSeqlensOffByOne, "agreement (golden) sdpa_varlen/three_seqs"),
    (bad.VarlenTopLeft, "profile varlen_causal = top_left"),
    (bad.VarlenBleed, "agreement (golden) sdpa_varlen/three_seqs"),
    (bad.VarlenEmptyNaN, "profile varlen_empty = nan"),
    (bad.VarlenNaNPaddingLeak, "invariant inv.varlen.poison"),
], ids=lambda x: x.__name__ if isinstance(x, type) else "")
def test_each_packed_bug_is_caught_where_it_shows(cls, where, golden, randoms):
    hits = detection.detect_one(cls(), golden=golden, random_cases=randoms)
    assert any(h.startswith(where) for h in hits), hits
