"""Meta-tests of the RoPE invariants (spec/invariants.md inv.rope.*): numpy-reference and the
zoo's control pass each one at every dtype; each RoPE known-bad fails the invariant that its bug
breaks; the tolerance is the stated rule on TABLE[rotary_embedding, dtype]."""
from __future__ import annotations

import pytest

from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance.checks import invariants as inv
from attnconf.conformance import known_bad
from attnconf.dtypes import DTYPE_NAMES

ROPE = [i.clause for i in inv.invariants() if i.operation == "rotary_embedding"]


def test_the_six_rope_invariants_are_registered_and_in_the_index():
    from attnconf import spec

    assert ROPE == ["inv.rope.norms", "inv.rope.relative", "inv.rope.identity", "inv.rope.partial",
                    "inv.rope.linearity", "inv.rope.shift"]
    for clause in ROPE:
        assert spec.clause(clause)["operations"] == ["rotary_embedding"]
    assert "rotary_embedding" in spec.clause("inv.determinism")["operations"]


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("make", [NumpyReferenceAdapter, known_bad.control()], ids=["numpy-reference", "control"])
def test_correct_implementations_pass_every_rope_invariant(make, dtype):
    records = inv.check(make(), dtype, select="inv.rope.", max_examples=12)   # not inv.rope_cache.*
    assert [r["case"] for r in records] == [f"invariant/{c}" for c in ROPE]
    bad = [(r["case"], r["message"]) for r in records if r["status"] != "pass"]
    assert not bad
    # explicit examples (2 layouts x positions 3000 and 100 000) plus the 12 draws
    assert all(r["metrics"]["examples"] >= 12 for r in records)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_rope_tolerance_follows_the_table_row(dtype):
    from attnconf.conformance.judging.tolerance import rule_for

    rule = rule_for("rotary_embedding", dtype)
    rec = inv.check(known_bad.control()(), dtype, select="inv.rope.norms", max_examples=1)[0]
    assert rec["metrics"]["tolerance_ulps"] == 2 * max(rule.k * inv.INV_BASELINE_ULPS, rule.floor_ulps)
    assert f"{rule.arg_ulps:g} x |θ|" in rec["metrics"]["rule"]


def test_determinism_probe_runs_for_a_rope_only_adapter():
    import dataclasses

    class RopeOnly(known_bad.control()):
        name = "test/rope-only"
        capabilities = dataclasses.replace(known_bad.control().capabilities, operations=("rotary_embedding",))

    rec = inv.check_determinism(RopeOnly(), "float32")
    assert rec["status"] == "pass" and rec["operation"] == "rotary_embedding"
    recs = inv.check(RopeOnly(), "float32", max_examples=1)
    # the operations it does not implement have no records (the run's coverage entries say so)
    assert recs and {r["operation"] for r in recs} == {"rotary_embedding"}


def test_an_adapter_without_rope_gets_no_rope_invariant_records():
    import dataclasses

    class SdpaOnly(known_bad.control()):
        name = "test/sdpa-only"
        capabilities = dataclasses.replace(known_bad.control().capabilities, operations=("sdpa",))

    recs = {r["clauses"][0]: r for r in inv.check(SdpaOnly(), "float32", select="inv.rope", max_examples=1)}
    assert ROPE and not set(ROPE) & set(recs), recs
    full = inv.check(SdpaOnly(), "float32", select="inv.convex_hull", max_examples=1)
    assert [r["status"] for r in full] == ["pass"]


from attnconf.conformance.known_bad import rope  # noqa: E402

# Each RoPE known-bad and an invariant its bug breaks (measured at the default example count).
BROKEN = [
    (rope.RopeLayoutSwapped, "inv.rope.norms", "float32"),
    (rope.RopeLayoutSwapped, "inv.rope.shift", "bfloat16"),
    (rope.RopeReversedRotation, "inv.rope.shift", "float64"),
    (rope.RopePositionsOffByOne, "inv.rope.identity", "float32"),
    (rope.RopePositionsIgnored, "inv.rope.shift", "float32"),
    (rope.RopePositionsIgnored, "inv.rope.identity", "float16"),
    (rope.RopePartialTrailingChannels, "inv.rope.partial", "float32"),
    (rope.RopePartialHeadDimFrequencies, "inv.rope.partial", "float64"),
    (rope.RopeBfloat16Angles, "inv.rope.shift", "bfloat16"),
    (rope.RopeBfloat16Angles, "inv.rope.relative", "float16"),
    (rope.RopeCosSinBelowDtype, "inv.rope.norms", "float32"),
    (rope.RopeFloat32AnglesForFloat64, "inv.rope.relative", "float64"),
    (rope.RopeLinearScalingOnBase, "inv.rope.shift", "float32"),
    (rope.RopeYarnNoAttentionFactor, "inv.rope.norms", "float64"),
]


@pytest.mark.parametrize("cls, clause, dtype", BROKEN, ids=[f"{c.__name__}-{cl}-{d}" for c, cl, d in BROKEN])
def test_rope_known_bad_fails_its_invariant(cls, clause, dtype):
    rec = inv.check(cls(), dtype, select=clause)[0]
    assert rec["clauses"] == [clause]
    assert rec["status"] == "fail", rec["message"]
    assert "shrunk counterexample" in rec["message"] and rec["metrics"]["counterexample"]
    assert clause in rec["repro"]


@pytest.mark.parametrize("cls", [rope.RopeLlama3BandsSwapped, rope.RopeYarnTruncateFalseDefault],
                         ids=lambda c: c.__name__)
def test_scaling_rule_bugs_keep_the_invariants(cls):
    """Wrong llama3 bands or YaRN truncate default are still rotations by position-free angles:
    every invariant holds (their catch is the agreement and profile checks', test_rope_profile)."""
    recs = inv.check(cls(), "float32", select="inv.rope")
    assert {r["status"] for r in recs} == {"pass"}
