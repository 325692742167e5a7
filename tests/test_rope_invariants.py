"""Meta-tests of the RoPE invariants (spec/invariants.md inv.rope.*): numpy-reference and the
zoo's control pass each one at every dtype; each RoPE known-bad fails the invariant that its bug
breaks; the tolerance is the stated rule on TABLE[rotary_embedding, dtype]."""
from __future__ import annotations

import pytest

from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.conformance import invariants as inv
from attnconf.conformance import known_bad
from attnconf.dtypes import DTYPE_NAMES

ROPE = [i.clause for i in inv.INVARIANTS if i.operation == "rotary_embedding"]


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
    records = inv.check(make(), dtype, select="inv.rope", max_examples=12)
    assert [r["case"] for r in records] == [f"invariant/{c}" for c in ROPE]
    bad = [(r["case"], r["message"]) for r in records if r["status"] != "pass"]
    assert not bad
    # explicit examples (2 layouts x positions 3000 and 100 000) plus the 12 draws
    assert all(r["metrics"]["examples"] >= 12 for r in records)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_rope_tolerance_follows_the_table_row(dtype):
    from attnconf.conformance.tolerance import rule_for

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
    assert {r["status"] for r in recs if r["operation"] != "rotary_embedding"} == {"skip"}


def test_an_adapter_without_rope_skips_the_rope_invariants():
    import dataclasses

    class SdpaOnly(known_bad.control()):
        name = "test/sdpa-only"
        capabilities = dataclasses.replace(known_bad.control().capabilities, operations=("sdpa",))

    recs = {r["clauses"][0]: r for r in inv.check(SdpaOnly(), "float32", select="inv.rope", max_examples=1)}
    assert all(recs[c]["status"] == "skip" for c in ROPE)
