"""Meta-tests of conformance/checks/invariants/: the control passes, each property fails the
known-bad implementation that breaks it, and a failure explains itself (shrunk example, repro)."""
from __future__ import annotations

import dataclasses

import pytest

from attnconf.adapters.base import Capabilities
from attnconf.conformance.checks import invariants as inv
from attnconf.dtypes import DTYPE_NAMES, INDEX_DTYPES

from attnconf.conformance import known_bad
from attnconf.conformance.known_bad import causal, encoding, gqa, mask, mha, precision, scale, softmax

CLAUSES = [i.clause for i in inv.invariants()] + ["inv.determinism"]


@pytest.mark.parametrize("dtype", DTYPE_NAMES + INDEX_DTYPES)
def test_control_passes_every_invariant(dtype):
    records = inv.check(known_bad.control()(), dtype, max_examples=4)
    # an integer-valued operation's invariants run at its own dtype only, determinism at the float ones
    want = inv.clauses_for(known_bad.control()(), dtype)
    assert ("inv.determinism" in want) == (dtype not in INDEX_DTYPES)
    assert [r["case"] for r in records] == [f"invariant/{c}" for c in want]
    bad = [(r["case"], r["message"]) for r in records if r["status"] != "pass"]
    assert not bad
    assert all(r["metrics"]["examples"] >= 1 for r in records)


# Each known-bad implementation and the invariant that must catch it (at float32 unless noted).
BROKEN = [
    (softmax.SoftmaxOverQueries, "inv.convex_hull", "float32"),
    (softmax.BlockedSoftmaxNoRescale, "inv.key_permutation", "float32"),
    (softmax.NoMaxSubtraction, "inv.finite", "float32"),
    (mask.InvertedBoolMask, "inv.masked_keys", "float32"),
    (mask.MaskAfterSoftmax, "inv.masked_keys", "float32"),
    (mask.MaskTransposed, "inv.mask_equivalence", "float32"),
    (mask.FullyMaskedNaN, "inv.finite", "float32"),
    (causal.CausalLeaksNextKey, "inv.causal_prefix", "float32"),
    (causal.CausalAlwaysBottomRight, "inv.causal_prefix", "float32"),
    (causal.CausalIgnoresAlignment, "inv.mask_equivalence", "float32"),
    (causal.MaskReplacesCausal, "inv.mask_equivalence", "float32"),
    (gqa.GqaTile, "inv.gqa_repeat", "float32"),
    (scale.ExplicitScaleIgnored, "inv.scale_homogeneity", "float32"),
    (scale.ScaleFromValueDim, "inv.scale_homogeneity", "float64"),
    (precision.Float16InsideFloat32, "inv.value_linearity", "float32"),
    (precision.NondeterministicKeyOrder, "inv.determinism", "float64"),
    (mha.MhaHeadSplitStrided, "inv.mha.decomposition", "float32"),
    (mha.MhaWeightsTransposed, "inv.mha.decomposition", "float32"),
    (encoding.EncConcatForInterleaved, "inv.enc.pythagorean", "float32"),
    (encoding.EncT2tForVaswani, "inv.enc.rotation", "float32"),
    (encoding.EncExponentIOverD, "inv.enc.rotation", "float64"),
    (encoding.EncOffsetOffByOne, "inv.enc.offset_shift", "float32"),
    (encoding.EncFloat16Angles, "inv.enc.rotation", "float16"),
    (encoding.EncOddDimFromDPlus1, "inv.enc.bounds", "bfloat16"),
]


@pytest.mark.parametrize("cls, clause, dtype", BROKEN, ids=[f"{c.__name__}-{cl}" for c, cl, _ in BROKEN])
def test_known_bad_fails_its_invariant(cls, clause, dtype):
    records = inv.check(cls(), dtype, select=clause, budget_s=None)
    rec = next(r for r in records if r["clauses"] == [clause])
    assert rec["status"] in ("fail", "error"), rec["message"]
    assert rec["check"] == "invariant" and rec["dtype"] == dtype
    if clause != "inv.determinism":
        assert "shrunk counterexample" in rec["message"]
        assert rec["metrics"]["counterexample"]
    assert rec["repro"].startswith("attnconf run ") and clause in rec["repro"]


def test_failure_is_shrunk_to_a_small_example():
    rec = inv.check(gqa.GqaTile(), "float32", select="inv.gqa_repeat")[0]
    ex = rec["metrics"]["counterexample"]
    # the smallest GQA shape that shows tiling: one batch, two kv heads, group of 2
    assert (ex["B"], ex["Hkv"], ex["G"]) == (1, 2, 2), ex


def test_check_is_reproducible_for_a_seed():
    a = inv.check(mask.InvertedBoolMask(), "float32", seed=3, select="inv.masked_keys")
    b = inv.check(mask.InvertedBoolMask(), "float32", seed=3, select="inv.masked_keys")
    assert a[0]["message"] == b[0]["message"]


class _NoGqaNoMasks(known_bad.control()):
    name = "test/no-gqa-no-masks"
    capabilities = dataclasses.replace(known_bad.control().capabilities, gqa=False, mask_kinds=())


def test_missing_capability_is_a_skip_not_a_pass():
    recs = {r["clauses"][0]: r for r in inv.check(_NoGqaNoMasks(), "float32", max_examples=2)}
    for clause in ("inv.gqa_repeat", "inv.masked_keys", "inv.mask_equivalence"):
        assert recs[clause]["status"] == "skip" and recs[clause]["message"].startswith("unsupported")
    assert recs["inv.convex_hull"]["status"] == "pass"


def test_an_unsupported_dtype_skips_and_an_operation_not_implemented_has_no_record():
    sdpa_only = type("SdpaOnly", (known_bad.control(),), {
        "name": "test/sdpa-only", "capabilities": Capabilities(operations=("sdpa",), dtypes=("float32",))})
    recs = inv.check(sdpa_only(), "float16")
    assert recs and {r["status"] for r in recs} == {"skip"}
    recs = {r["clauses"][0]: r for r in inv.check(sdpa_only(), "float32", max_examples=2)}
    # the operations it does not implement: coverage entries of the run, no invariant records
    assert recs and {r["operation"] for r in recs.values()} == {"sdpa"}
    assert "inv.enc.rotation" not in recs and "inv.mha.decomposition" not in recs
    assert recs["inv.convex_hull"]["status"] == "pass"


def test_implementation_exception_is_an_error_record():
    class Raises(known_bad.control()):
        name = "test/raises"

        def sinusoidal_encoding(self, *a, **k):
            raise RuntimeError("kernel exploded")

    rec = inv.check(Raises(), "float32", select="inv.enc.bounds")[0]
    assert rec["status"] == "error" and "kernel exploded" in rec["message"]


def test_budget_bounds_the_time_of_a_slow_adapter():
    import time

    import dataclasses

    class Slow(known_bad.control()):
        # slow at sdpa, and implementing only sdpa: the other operations' invariants (LSE, paged,
        # varlen, …) would add their own, unbudgeted explicit examples at full speed
        name = "test/slow"
        capabilities = dataclasses.replace(known_bad.control().capabilities, operations=("sdpa",))

        def sdpa(self, *a, **k):
            time.sleep(0.01)
            return super().sdpa(*a, **k)

    t0 = time.perf_counter()
    recs = inv.check(Slow(), "float32", max_examples=50, budget_s=1.0, select="inv.")
    # unbudgeted, 50 examples x ~3 calls x 10 ms x 19 properties would take ~28 s
    assert time.perf_counter() - t0 < 10.0
    assert all(r["metrics"]["examples"] >= 1 for r in recs if r["status"] == "pass")


def test_tolerances_come_from_the_tolerance_table():
    from attnconf.conformance.judging.tolerance import rule_for

    r = rule_for("sdpa", "float32")
    assert inv.inv_ulps("sdpa", "float32") == 2 * max(r.k * inv.INV_BASELINE_ULPS, r.floor_ulps)


def test_invariant_and_profile_records_follow_the_results_schema():
    import json

    import jsonschema

    from attnconf import spec
    from attnconf.conformance.checks import profile

    schema = json.loads(spec._read("results.schema.json"))
    record_schema = {**schema["$defs"]["record"], "$defs": schema["$defs"]}
    bad = mask.InvertedBoolMask()
    records = (inv.check(bad, "float32", max_examples=2) + inv.check(known_bad.control()(), "float16", max_examples=2)
               + profile.profile_records(bad, profile.detect(bad)))
    for rec in records:
        jsonschema.validate(json.loads(json.dumps(rec)), record_schema)
