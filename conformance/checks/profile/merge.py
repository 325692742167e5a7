"""Profile aspects of `merge_attention_states` (spec sdpa.merge.*): whether empty states stay
empty (and two empty states give (0, −∞), not NaN), whether the weights subtract the maximum
(LSEs near 800 in float64, 80 below) and whether the output is normalised. Named by the
merge_attention_states registry entry (`profile=`); run by the core,
attnconf.conformance.checks.profile.

Candidates: the reference's merge, and NumPy float64 evaluations of each alternative.
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _declinable, _fmt, _named, _probe, match


def _states(seed, n=2, l=3, e=4, center=0.0):
    rng = np.random.default_rng(seed)
    outs = np.round(rng.uniform(-1, 1, (n, 1, 1, l, e)), 2)
    lses = np.round(center + rng.uniform(-2, 2, (n, 1, 1, l)), 2)
    return outs, lses


def _run(adapter, dtype, outs, lses, which=0):
    def call():
        return adapter.merge_attention_states(adapter.from_numpy(outs, dtype), adapter.from_numpy(lses, dtype))[which]
    return _probe(adapter, call)


def _ref(outs, lses):
    from attnconf import reference

    r = reference.compute("merge_attention_states", {"outputs": outs, "lses": lses}, {})
    return r["output"], r["lse"]


@_declinable
def _empty(adapter, dtype):
    outs, lses = _states(41)
    lses[0, ..., 0] = -np.inf            # row 0: the first state empty
    lses[:, ..., 1] = -np.inf            # row 1: both states empty
    out, how = _run(adapter, dtype, outs, lses, 0)
    lse, how_lse = _run(adapter, dtype, outs, lses, 1)
    if out is None or lse is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": how}
    want_out, want_lse = _ref(outs, lses)
    nan = bool(np.isnan(out).any() or np.isnan(lse).any())
    ok = (np.allclose(out, want_out, atol=1e-2, rtol=0) and np.array_equal(np.isneginf(lse), np.isneginf(want_lse))
          and np.allclose(lse[np.isfinite(want_lse)], want_lse[np.isfinite(want_lse)], atol=1e-2, rtol=0))
    value = "spec" if ok else _named("merge_empty", "nan") if nan else "other"
    return {"value": value, "evidence": f"first state empty (row 0), both empty (row 1): output rows "
            f"{out[..., :2, 0].ravel().tolist()}, lse {lse[..., :2].ravel().tolist()}"}


@_declinable
def _overflow(adapter, dtype):
    center = 800.0 if dtype == "float64" else 80.0 if dtype == "float32" else 12.0
    outs, lses = _states(42, center=center)
    out, how = _run(adapter, dtype, outs, lses, 0)
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": how}
    want, _ = _ref(outs, lses)
    bad = not np.all(np.isfinite(out))
    value = _named("merge_overflow", "overflow") if bad else \
        "stable" if np.allclose(out, want, atol=1e-2, rtol=0) else "other"
    return {"value": value, "evidence": f"LSEs near {center:g} at {dtype}: output {'not finite' if bad else 'finite'}"}


@_declinable
def _normalised(adapter, dtype):
    outs, lses = _states(43)
    out, how = _run(adapter, dtype, outs, lses, 0)
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": how}
    want, _ = _ref(outs, lses)
    m = lses.max(axis=0)
    w = np.exp(lses - m)
    cands = {"spec": want, _named("merge_normalised", "unnormalised"): np.sum(w[..., None] * outs, axis=0),
             "exp_lse": np.sum(np.exp(lses)[..., None] * outs, axis=0)}
    value, dist = match(out, cands, float(np.abs(outs).max()))
    if value == "exp_lse":
        value = _named("merge_normalised", "unnormalised")
    return {"value": value, "evidence": f"two states, LSEs in ±2: distance to {_fmt(dist)}"}


def _dtype_probe(adapter, dt):
    outs, lses = _states(44)
    return adapter.merge_attention_states(adapter.from_numpy(outs, dt), adapter.from_numpy(lses, dt))[0]


_U = ("unsupported",)
ASPECTS = (
    Aspect("merge_empty", "merge_attention_states", _empty, "sdpa.merge.empty", "spec", _U),
    Aspect("merge_overflow", "merge_attention_states", _overflow, "sdpa.merge.definition", "stable", _U),
    Aspect("merge_normalised", "merge_attention_states", _normalised, "sdpa.merge.definition", "spec", _U),
)

OUTPUT_DTYPE = _dtype_probe
