"""Profile aspects of scaled dot-product attention (sdpa.*): probes and their named alternatives.
Named by the sdpa registry entry (`profile=`); run by the core, attnconf.conformance.checks.profile."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _Declined, _declinable, _fmt, _named, _probe, match


def _run_sdpa(adapter, dtype, q, k, v, mask=None, **opts):
    """(output float64 | None, outcome) with outcome "ok", "unsupported: …" or "raised: …";
    _Declined when the implementation raises NotImplementedError. A probe needing a claim the
    adapter does not make (plan.case_claim: mask kind, mask with is_causal, …) is "unsupported"
    without a call, as a golden case is."""
    import types

    from attnconf.conformance import plan

    inputs = {"query": q, "key": k, "value": v, **({} if mask is None else {"attn_mask": mask})}
    reason = plan.case_claim(adapter, types.SimpleNamespace(operation="sdpa", inputs=inputs, options=opts))
    if reason:
        return None, f"unsupported: {reason}"

    def call():
        args = [adapter.from_numpy(a, dtype) for a in (q, k, v)]
        m = None if mask is None else adapter.mask_from_numpy(mask, dtype)
        return adapter.sdpa(*args, attn_mask=m, **opts)

    return _probe(adapter, call)


def _ref(q, k, v, mask=None, **opts) -> np.ndarray:
    from attnconf import reference

    inputs = {"query": q, "key": k, "value": v}
    if mask is not None:
        inputs["attn_mask"] = mask
    return reference.compute("sdpa", inputs, opts)["output"]


def _arrays(seed, b=1, h=1, hkv=1, l=3, s=5, e=4, ev=None, spread=1.0):
    rng = np.random.default_rng(seed)
    q = np.round(rng.uniform(-spread, spread, (b, h, l, e)), 3)
    k = np.round(rng.uniform(-spread, spread, (b, hkv, s, e)), 3)
    v = np.round(rng.uniform(-1, 1, (b, hkv, s, ev or e)) + rng.uniform(1, 2, (1, 1, 1, ev or e)), 3)
    return q, k, v, rng


def _mask_for(adapter, m: np.ndarray):
    kinds = adapter.capabilities.mask_kinds
    if "bool" in kinds:
        return m
    return np.where(m, 0.0, -np.inf) if "float" in kinds else None


# ---------------------------------------------------------------------------------------------
# SDPA aspects
# ---------------------------------------------------------------------------------------------
@_declinable
def _fully_masked(adapter, dtype):
    q, k, v, _ = _arrays(1)
    m = np.ones((1, 1, 3, 5), bool)
    m[..., 1, :] = False
    mask = _mask_for(adapter, m)
    if mask is None:
        return {"value": "rejects", "evidence": "the adapter takes no attn_mask"}
    out, how = _run_sdpa(adapter, dtype, q, k, v, mask)
    if out is None:
        return {"value": "rejects", "evidence": how}
    row = out[0, 0, 1]
    cands = {"zero": np.zeros_like(row), _named("fully_masked", "uniform"): v[0, 0].mean(axis=0),
             _named("fully_masked", "nan"): np.full_like(row, np.nan)}
    value, dist = match(row, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"fully-masked row gave {np.round(row, 4).tolist()} "
            f"(distance to {_fmt(dist)}); claimed {adapter.capabilities.fully_masked!r}"}


@_declinable
def _causal(adapter, dtype, requested):
    q, k, v, _ = _arrays(2, l=3, s=6)
    out, how = _run_sdpa(adapter, dtype, q, k, v, is_causal=True, causal_alignment=requested)
    if out is None:
        return {"value": "rejects", "evidence": f"causal_alignment={requested!r}, L=3, S=6: {how}"}
    cands = {a: _ref(q, k, v, is_causal=True, causal_alignment=a) for a in ("top_left", "bottom_right")}
    cands["not_causal"] = _ref(q, k, v)
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"is_causal with causal_alignment={requested!r}, L=3, S=6: "
            f"distance to {_fmt(dist)}"}


@_declinable
def _mask_and_causal(adapter, dtype):
    q, k, v, rng = _arrays(3, l=5, s=5)
    m = rng.random((1, 1, 5, 5)) < 0.5
    m[..., 0] = True
    m |= ~np.tril(np.ones((5, 5), bool))           # the mask opens the future, causal must close it
    mask = _mask_for(adapter, m)
    if mask is None:
        return {"value": "rejects", "evidence": "the adapter takes no attn_mask"}
    out, how = _run_sdpa(adapter, dtype, q, k, v, mask, is_causal=True)
    if out is None:
        value = "rejects" if how.startswith("unsupported") else _named("mask_and_causal", "error")
        return {"value": value, "evidence": f"attn_mask with is_causal=True: {how}"}
    cands = {"intersect": _ref(q, k, v, m, is_causal=True), "mask_only": _ref(q, k, v, m),
             "causal_only": _ref(q, k, v, is_causal=True)}
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"attn_mask with is_causal=True: distance to {_fmt(dist)}"}


@_declinable
def _mask_polarity(adapter, dtype):
    if "bool" not in adapter.capabilities.mask_kinds:
        return {"value": "unsupported", "evidence": "no bool attn_mask"}
    q, k, v, rng = _arrays(4, l=4, s=6)
    m = rng.random((1, 1, 4, 6)) < 0.5
    m[..., 0], m[..., 1] = True, False               # both polarities leave every row a visible key
    out, how = _run_sdpa(adapter, dtype, q, k, v, m)
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": how}
    cands = {"true_attends": _ref(q, k, v, m), _named("mask_polarity", "true_means_masked"): _ref(q, k, v, ~m),
             "ignored": _ref(q, k, v)}
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"bool mask: distance to {_fmt(dist)}"}


@_declinable
def _gqa(adapter, dtype):
    q, k, v, _ = _arrays(5, h=4, hkv=2, l=3, s=5)
    out, how = _run_sdpa(adapter, dtype, q, k, v, enable_gqa=True)
    if out is None:
        return {"value": "unsupported", "evidence": f"H=4, Hkv=2, enable_gqa=True: {how}"}
    cands = {"repeat_interleave": _ref(q, k, v, enable_gqa=True),
             _named("gqa", "tile"): _ref(q, np.tile(k, (1, 2, 1, 1)), np.tile(v, (1, 2, 1, 1)))}
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"H=4, Hkv=2: distance to {_fmt(dist)}"}


@_declinable
def _value_dim(adapter, dtype):
    q, k, v, _ = _arrays(6, e=4, ev=7)
    out, how = _run_sdpa(adapter, dtype, q, k, v)
    if out is None:
        return {"value": "rejects", "evidence": f"E=4, Ev=7: {how}"}
    value, dist = match(out, {"supported": _ref(q, k, v)}, float(np.abs(v).max()))
    return {"value": value, "evidence": f"E=4, Ev=7: distance to {_fmt(dist)}"}


@_declinable
def _default_scale(adapter, dtype):
    ev = 9 if adapter.capabilities.value_dim_differs else 4
    q, k, v, _ = _arrays(7, e=4, ev=ev, l=4, s=6, spread=2.0)
    try:
        out, how = _run_sdpa(adapter, dtype, q, k, v)
    except _Declined:        # declining Ev != E: the probe still runs with Ev == E
        if ev == 4:
            raise
        out, how = None, "declined"
    if out is None and ev != 4:
        ev = 4
        q, k, v, _ = _arrays(7, e=4, ev=ev, l=4, s=6, spread=2.0)
        out, how = _run_sdpa(adapter, dtype, q, k, v)
    if out is None:
        return {"value": "other", "evidence": f"E=4, Ev={ev}, scale=None: {how}"}
    value_dim = _named("default_scale", "value_dim")        # 1/sqrt(Ev)
    cands = {"1/sqrt(E)": _ref(q, k, v), value_dim: _ref(q, k, v, scale=1 / np.sqrt(ev)),
             "1/E": _ref(q, k, v, scale=0.25), "1": _ref(q, k, v, scale=1.0)}
    if ev == 4:
        cands.pop(value_dim)
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"E=4, Ev={ev}, scale=None: distance to {_fmt(dist)}"}


def _dtype_probe_sdpa(adapter, dt):
    q, k, v, _ = _arrays(8)
    return adapter.sdpa(*(adapter.from_numpy(a, dt) for a in (q, k, v)))


ASPECTS = (
    Aspect("fully_masked", "sdpa", _fully_masked, "sdpa.fully_masked", "zero", ("rejects",)),
    Aspect("causal_alignment", "sdpa", lambda adapter, dtype: _causal(adapter, dtype, "top_left"),
           "sdpa.causal.top_left", "top_left", ("rejects",)),
    Aspect("causal_bottom_right", "sdpa", lambda adapter, dtype: _causal(adapter, dtype, "bottom_right"),
           "sdpa.causal.bottom_right", "bottom_right", ("rejects",)),
    Aspect("mask_and_causal", "sdpa", _mask_and_causal, "sdpa.mask_and_causal", "intersect", ("rejects",)),
    Aspect("mask_polarity", "sdpa", _mask_polarity, "sdpa.mask.bool", "true_attends", ("unsupported",)),
    Aspect("gqa", "sdpa", _gqa, "sdpa.gqa", "repeat_interleave", ("unsupported",)),
    Aspect("value_dim", "sdpa", _value_dim, "sdpa.value_dim", "supported", ("rejects",)),
    Aspect("default_scale", "sdpa", _default_scale, "sdpa.scale.default", "1/sqrt(E)", ()),
)

OUTPUT_DTYPE = _dtype_probe_sdpa
