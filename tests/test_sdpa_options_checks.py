"""The checks of the sdpa kernel options (issue 14) tested on known implementations: the reference
and the zoo's control are canonical on every profile aspect and pass every inv.opt.* invariant;
each option bug of the zoo shows as its spec-named alternative and is caught by a golden case;
an adapter without the options has them all skipped, never passed."""
from __future__ import annotations

import pytest

from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance import detection, known_bad
from attnconf.conformance.checks import invariants, profile
from attnconf.conformance.execution.runner import load_cases
from attnconf.conformance.known_bad import sdpa_options as zoo

OPTION_ASPECTS = [a for a in profile.aspects() if a.name.startswith("opt_")]
CANONICAL = {a.name: a.canonical for a in OPTION_ASPECTS}

# bug -> the profile values it shows (aspect: named alternative of spec/index.json)
EXPECTED = {
    zoo.WindowLengthLeft: {"opt_window": "window_length"},
    zoo.WindowRightPlusOne: {"opt_window": "right_plus_one"},
    zoo.WindowIndexBased: {"opt_window_bottom_right": "index_based"},
    zoo.SoftcapAfterMask: {"opt_softcap": "after_mask"},
    zoo.SoftcapClamp: {"opt_softcap": "clamp"},
    zoo.SinksIgnored: {"opt_sinks": "ignored"},
    zoo.SinksValueRow: {"opt_sinks": "value_row"},
    zoo.AlibiSignFlipped: {"opt_alibi": "sign"},
    zoo.AlibiTopLeft: {"opt_alibi_alignment": "top_left"},
    zoo.DecodeFrontierTopLeft: {"opt_decode": "top_left"},
    zoo.PaddedQueryRowsNan: {"opt_query_lengths": "nan"},
    zoo.KeyLengthsIgnored: {"opt_key_lengths": "ignored"},
    zoo.ChunkBoundaryOffByOne: {"opt_chunk": "boundary_plus_one"},
    zoo.ChunkAsWindow: {"opt_chunk": "sliding_window"},
}


def _values(adapter) -> dict:
    return {k: v["value"] for k, v in profile.detect(adapter).items() if k in CANONICAL}


def test_thirteen_aspects_and_the_correct_implementations_are_canonical():
    assert len(OPTION_ASPECTS) == 13
    for adapter in (NumpyReferenceAdapter(), known_bad.control()()):
        assert _values(adapter) == CANONICAL, adapter.name


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_option_bug_shows_its_named_alternative(cls):
    found = _values(cls())
    for aspect, value in EXPECTED[cls].items():
        assert found[aspect] == value, (aspect, found[aspect])


def test_every_option_bug_of_the_zoo_is_listed_here():
    bugs = [c for c in known_bad.all_known_bad() if c.__module__ == zoo.__name__]
    assert len(bugs) >= 10 and set(bugs) == set(EXPECTED)


@pytest.fixture(scope="module")
def option_goldens():
    return [c for c in load_cases(None, None) if c.id.startswith("sdpa/opt_")]


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_option_bug_is_caught_by_a_golden_case(cls, option_goldens):
    hits = detection.detect_one(cls(), golden=option_goldens, random_cases=[], dtypes=("float64",))
    assert any(h.startswith("agreement (golden) sdpa/opt_") for h in hits), hits


def _failing_invariants(adapter, dtypes=("float64", "float32", "bfloat16"), n=20):
    return [(dt, r["case"], r["message"]) for dt in dtypes
            for r in invariants.check(adapter, dt, seed=3, max_examples=n, select="invariant/inv.opt*")
            if r["status"] != "pass"]


def test_option_invariants_hold_for_the_reference_and_the_control():
    assert _failing_invariants(NumpyReferenceAdapter()) == []
    assert _failing_invariants(known_bad.control()()) == []


@pytest.mark.parametrize("cls,clause", [(zoo.DecodeFrontierTopLeft, "inv.opt.decode"),
                                        (zoo.WindowIndexBased, "inv.opt.window_causal"),
                                        (zoo.SinksValueRow, "inv.opt.sink_neg_inf")],
                         ids=lambda x: getattr(x, "__name__", x))
def test_option_invariants_fail_for_the_bugs_they_are_about(cls, clause):
    failing = {case for _, case, _ in _failing_invariants(cls(), dtypes=("float64",))}
    assert f"invariant/{clause}" in failing


def test_an_adapter_without_options_skips_their_invariants_and_aspects():
    from attnconf.adapters.base import Capabilities

    class Plain(NumpyReferenceAdapter):
        name = "plain"
        capabilities = Capabilities(operations=("sdpa",), dtypes=("float64",))

    recs = invariants.check(Plain(), "float64", seed=0, max_examples=2, select="invariant/inv.opt*")
    assert recs and {r["status"] for r in recs} == {"skip"}
    assert set(_values(Plain()).values()) == {"unsupported"}
