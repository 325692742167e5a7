"""Invariant verdicts do not depend on the machine: a fixed number of examples, never a time
budget, and the examples where documented framework bugs show are fixed ones that always run
(conformance/checks/invariants/: EXAMPLES, draws_for, Invariant.explicit).

The implementations are the NumPy control of the known-bad zoo with one framework's documented
bug grafted on (tensorflow.json and jax.json describe the real ones), so every test is quick.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from attnconf.conformance.checks import invariants as inv
from attnconf.conformance import known_bad

Control = known_bad.control()


class _Slow(Control):
    name = "test/slow-control"

    def sdpa(self, *args, **kwargs):
        time.sleep(0.03)
        return super().sdpa(*args, **kwargs)


def _summary(records) -> list[tuple]:
    return [(r["case"], r["status"], r["metrics"].get("examples"), r["message"]) for r in records]


def test_a_slow_adapter_draws_the_same_examples_as_a_fast_one():
    # a wall-time budget (the old default, 1 s per adapter-dtype) would stop the slow one early
    fast = inv.check(Control(), "float32", select="inv.convex_hull", max_examples=40)
    slow = inv.check(_Slow(), "float32", select="inv.convex_hull", max_examples=40)
    assert _summary(slow) == _summary(fast), f"a slow adapter should run {_summary(fast)}, but got {_summary(slow)}"
    assert fast[0]["metrics"]["examples"] > 20


def test_the_count_is_declared_per_framework_not_measured():
    jax_like = type("JaxLike", (Control,), {"name": "test/jax-like", "framework": "jax"})()
    assert inv.draws_for(Control()) == inv.EXAMPLES
    assert inv.draws_for(jax_like) == inv.PER_SHAPE_COMPILING["jax"] < inv.EXAMPLES
    assert inv.draws_for(Control(), 3) == 3 and inv.draws_for(jax_like, 100) == inv.PER_SHAPE_COMPILING["jax"]


class _XlaBf16MatVec(Control):
    """XLA on CPU: a bfloat16 dot with float32 accumulation raises when two of L, S, E are 1."""
    name = "test/xla-like-bf16"

    def sdpa(self, query, key, value, **kwargs):
        if str(np.asarray(query).dtype) == "bfloat16" and sum(
                n == 1 for n in (query.shape[-2], key.shape[-2], query.shape[-1])) >= 2:
            raise RuntimeError("Algorithm not supported by the ElementalIrEmitter: ALG_DOT_BF16_BF16_F32")
        return super().sdpa(query, key, value, **kwargs)


class _KerasMqa(Control):
    """Keras's TensorFlow einsum: one kv head for several query heads raises."""
    name = "test/keras-like-mqa"

    def sdpa(self, query, key, value, **kwargs):
        if key.shape[1] == 1 and query.shape[1] > 1:
            raise ValueError("Expected dimension H at axis 2 of the input shaped [B,S,1,E] but got dimension 1")
        return super().sdpa(query, key, value, **kwargs)


class _KerasFloat32Scale(Control):
    """Keras rounds the default softmax scale 1/sqrt(E) to float32 (its floatx), also for
    float64 inputs: exact for E = 1, 2, 4, not for E = 3."""
    name = "test/keras-like-float32-scale"

    def default_scale(self, e, ev):
        return float(np.float32(super().default_scale(e, ev)))


SDPA_CLAUSES = [i.clause for i in inv.invariants() if i.operation == "sdpa"]


@pytest.mark.parametrize("adapter, dtype, clauses", [
    (_XlaBf16MatVec, "bfloat16", [c for c in SDPA_CLAUSES if c != "inv.causal_prefix"]),
    (_KerasMqa, "float32", ["inv.gqa_repeat"]),
    (_KerasFloat32Scale, "float64", ["inv.scale_homogeneity"]),
], ids=["xla-bf16-matvec", "keras-mqa", "keras-float32-scale"])
def test_documented_bugs_are_reached_by_the_fixed_examples(adapter, dtype, clauses):
    ctx = inv.Context(adapter(), dtype)
    for clause in clauses:
        invariant = next(i for i in inv.invariants() if i.clause == clause)
        caught = []
        for ex in invariant.explicit(ctx.caps):
            try:
                invariant.prop(ctx, ex)
            except Exception as exc:      # Violation or the implementation's own error
                caught.append(ex)
        assert caught, f"a fixed example of {clause} should reach {adapter.__doc__.strip()}, but none did"


def test_with_one_draw_the_documented_bug_is_still_recorded():
    records = {r["clauses"][0]: r for r in inv.check(_KerasFloat32Scale(), "float64", max_examples=1, seed=7)}
    got = {c: r["status"] for c, r in records.items() if c in SDPA_CLAUSES}
    assert got == {c: "fail" if c == "inv.scale_homogeneity" else "pass" for c in got}, got


def test_the_mha_bias_example_of_keras_is_fixed():
    mha = next(i for i in inv.invariants() if i.clause == "inv.mha.decomposition")
    examples = mha.explicit(Control().capabilities)
    assert any(e["L"] == e["H"] and e["E"] == e["Ev"] == 1 and e["bias"] for e in examples), examples


def test_encoding_examples_reach_large_positions_with_offset_support():
    rotation = next(i for i in inv.invariants() if i.clause == "inv.enc.rotation")
    offsets = sorted(e["offset"] for e in rotation.explicit(Control().capabilities))
    assert offsets[0] > 2048 and offsets[-1] > 65504, f"offsets should pass 2048 and 65504, but got {offsets}"
