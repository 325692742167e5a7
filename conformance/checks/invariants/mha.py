"""Invariants of the multi-head attention layer (inv.mha.*) and its determinism probe. Named by
the registry entry attnconf/operations/mha.py (`invariants=`); run by checks.invariants."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, DeterminismProbe, Invariant, Violation, assert_close, inv_ulps
from attnconf.conformance.checks.invariants.sdpa import call_sdpa


# ---------------------------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------------------------
def _sdpa64(q, k, v):
    """Canonical float64 attention without masks (fallback when the adapter has no sdpa)."""
    logits = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ v


def prop_mha_decomposition(ctx, ex):
    x, kv, w = gen.mha_arrays(ex, ctx.dtype)
    h, e, ev = ex["H"], ex["E"], ex["Ev"]
    ad, dt = ctx.adapter, ctx.dtype
    out = ad.multi_head_attention(ad.from_numpy(x, dt), ad.from_numpy(kv, dt),
                                  {n: ad.from_numpy(a, dt) for n, a in w.items()}, num_heads=h)
    out = np.asarray(ad.to_numpy(out), np.float64)
    if out.shape != x.shape:
        raise Violation(f"multi_head_attention output should have shape {x.shape}, but got {out.shape}")

    def split(y, width):   # (B, T, H·width) -> (B, H, T, width), head h owns a column block
        return y.reshape(y.shape[0], y.shape[1], h, width).transpose(0, 2, 1, 3)

    proj = {n: kv @ w["w" + n] + w.get("b" + n, 0.0) for n in ("k", "v")}
    proj["q"] = x @ w["wq"] + w.get("bq", 0.0)
    q, k, v = (gen.round_to(split(proj[n], width), dt) for n, width in (("q", e), ("k", e), ("v", ev)))
    if "sdpa" in ctx.caps.operations:
        heads = call_sdpa(ctx, q, k, v)
    else:
        heads = _sdpa64(q, k, v)
    merged = heads.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], h * ev)
    expected = merged @ w["wo"] + w.get("bo", 0.0)
    v_scale = np.abs(kv) @ np.abs(w["wv"]) + np.abs(w.get("bv", 0.0))      # natural scale of v-proj
    scale = v_scale.max(axis=1, keepdims=True) @ np.abs(w["wo"]) + np.abs(w.get("bo", 0.0))
    assert_close(out, expected, scale, inv_ulps("multi_head_attention", dt), dt,
                 "multi_head_attention differs from projections + per-head sdpa + merge + output projection")


def _mha_strategy(caps, dtype):
    from hypothesis import strategies as st

    self_attn = gen.mha_examples(cross=False, bias=caps.mha_biases)
    return st.one_of(self_attn, gen.mha_examples(cross=True, bias=caps.mha_biases)) if caps.mha_cross else self_attn


def _mha_explicit(caps):
    """A layer whose sequence length equals its head count with one-wide heads (L = H = 2, E = Ev = 1):
    a per-head bias of shape (H, 1) is then ambiguous against (B, T, H, 1), and Keras's TF ops.add
    takes it for a per-position bias (tf.nn.bias_add on axis 1). Random draws hit it rarely."""
    return ({"B": 1, "L": 2, "S": 2, "H": 2, "E": 1, "Ev": 1, "D": 2, "Dkv": 2, "cross": False,
             "bias": bool(caps.mha_biases), "seed": 0},)


def _determinism_mha(ctx: Context, seed: int):
    ex = {"B": 2, "L": 12, "S": 12, "H": 2, "E": 4, "Ev": 4, "D": 8, "Dkv": 8, "cross": False,
          "bias": False, "seed": seed}
    x, _, w = gen.mha_arrays(ex, ctx.dtype)
    ad = ctx.adapter
    return lambda: np.asarray(ad.to_numpy(ad.multi_head_attention(
        ad.from_numpy(x, ctx.dtype), ad.from_numpy(x, ctx.dtype),
        {n: ad.from_numpy(a, ctx.dtype) for n, a in w.items()}, num_heads=2)), np.float64)


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.mha.decomposition", "multi_head_attention", _mha_strategy, prop_mha_decomposition,
              factor=3, explicit=_mha_explicit),
)

DETERMINISM = DeterminismProbe("multi_head_attention", _determinism_mha)
