"""Profile aspects of the sdpa kernel options (sdpa.opt.*): which named alternative an
implementation follows for the window (its size and its alignment), the chunk (sdpa.opt.chunk:
a window or a shifted boundary), soft-capping (before or after
the mask, tanh or clamp, cap 0), sinks, ALiBi (sign, alignment, absolute distance), the decode
frontier, key lengths, padded query rows and per-sequence bottom-right positions. Named by the
sdpa registry entry (`profile=`); run by the core, attnconf.conformance.checks.profile.

Candidates are the reference with the alternative's options (or inputs), or, where no option
spells the alternative (soft-cap after the mask, clamp, a sink's value row, ALiBi without |·|),
a float64 NumPy evaluation of the alternative's formula on the probe's inputs. An aspect whose
option the adapter does not list in Capabilities.sdpa_options is `unsupported` (skip).
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _declinable, _fmt, _named, _probe, match

_FLOAT_INPUTS = ("sinks", "alibi_slopes")
_INDEX_INPUTS = ("query_offset", "key_lengths", "query_lengths")


def _run(adapter, dtype, q, k, v, mask=None, **opts):
    def call():
        native = {n: (adapter.from_numpy(np.asarray(x, np.float64), dtype) if n in _FLOAT_INPUTS else
                      adapter.index_from_numpy(np.asarray(x, np.int64)) if n in _INDEX_INPUTS else x)
                  for n, x in opts.items()}
        m = None if mask is None else adapter.mask_from_numpy(mask, dtype)
        return adapter.sdpa(*(adapter.from_numpy(a, dtype) for a in (q, k, v)), attn_mask=m, **native)

    return _probe(adapter, call)


def _ref(q, k, v, mask=None, **opts) -> np.ndarray:
    from attnconf import reference

    inputs = {"query": q, "key": k, "value": v, **{n: np.asarray(opts.pop(n)) for n in list(opts)
                                                   if n in _FLOAT_INPUTS + _INDEX_INPUTS}}
    if mask is not None:
        inputs["attn_mask"] = mask
    return reference.compute("sdpa", inputs, opts)["output"]


def _arrays(seed, b=1, h=2, l=4, s=6, e=4, spread=1.0):
    rng = np.random.default_rng(seed)
    q = np.round(rng.uniform(-spread, spread, (b, h, l, e)), 3)
    k = np.round(rng.uniform(-spread, spread, (b, h, s, e)), 3)
    v = np.round(rng.uniform(-1, 1, (b, h, s, e)) + rng.uniform(1, 2, (1, 1, 1, e)), 3)
    return q, k, v, rng


def _attend(logits, v, sink=None):
    """softmax(logits) @ v in float64 (−∞ hidden), with an optional sink logit (1, H, 1, 1)."""
    top = logits.max(axis=-1, keepdims=True)
    if sink is not None:
        top = np.maximum(top, sink)
    e = np.exp(logits - top)
    z = e.sum(axis=-1, keepdims=True) + (0 if sink is None else np.exp(sink - top))
    return (e / z) @ v


def _logits(q, k):
    return q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])


def _needs(adapter, *options):
    missing = [o for o in options if o not in adapter.capabilities.sdpa_options]
    return {"value": "unsupported", "evidence": f"Capabilities.sdpa_options lacks {', '.join(missing)}"} if missing else None


def _result(out, how, cands, scale, what):
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": f"{what}: {how}"}
    value, dist = match(out, cands, scale)
    return {"value": value, "evidence": f"{what}: distance to {_fmt(dist)}"}


# --- window ----------------------------------------------------------------------------------
@_declinable
def _window(adapter, dtype):
    if (no := _needs(adapter, "window")):
        return no
    q, k, v, _ = _arrays(11, l=8, s=8)
    out, how = _run(adapter, dtype, q, k, v, window=(2, 1))
    cands = {"spec": _ref(q, k, v, window=(2, 1)), _named("opt_window", "window_length"): _ref(q, k, v, window=(1, 1)),
             _named("opt_window", "left_plus_one"): _ref(q, k, v, window=(3, 1)),
             _named("opt_window", "right_plus_one"): _ref(q, k, v, window=(2, 2)), "ignored": _ref(q, k, v)}
    return _result(out, how, cands, float(np.abs(v).max()), "window=(2, 1), L = S = 8")


def _window_alignment(requested, other):
    @_declinable
    def probe(adapter, dtype):
        if (no := _needs(adapter, "window")):
            return no
        if requested not in adapter.capabilities.causal_alignments:
            return {"value": "unsupported", "evidence": f"claims no {requested} alignment"}
        q, k, v, _ = _arrays(12, l=3, s=8)
        out, how = _run(adapter, dtype, q, k, v, window=(1, 0), causal_alignment=requested)
        cands = {"aligned": _ref(q, k, v, window=(1, 0), causal_alignment=requested),
                 _named(f"opt_window_{requested}", other): _ref(
                     q, k, v, window=(1, 0), causal_alignment="top_left" if requested == "bottom_right" else "bottom_right")}
        return _result(out, how, cands, float(np.abs(v).max()), f"window=(1, 0), {requested}, L=3, S=8")
    return probe


# --- chunk ------------------------------------------------------------------------------------
@_declinable
def _chunk(adapter, dtype):
    if (no := _needs(adapter, "chunk")):
        return no
    q, k, v, _ = _arrays(16, l=10, s=10)
    out, how = _run(adapter, dtype, q, k, v, chunk=4)
    i, j = np.arange(10)[:, None], np.arange(10)[None, :]
    shifted = ((i + 1) // 4 == (j + 1) // 4) & (j <= i)        # chunks counted from position 1
    cands = {"spec": _ref(q, k, v, chunk=4),
             _named("opt_chunk", "sliding_window"): _ref(q, k, v, window=(3, 0)),
             _named("opt_chunk", "boundary_plus_one"): _attend(np.where(shifted, _logits(q, k), -np.inf), v),
             "causal": _ref(q, k, v, is_causal=True)}
    return _result(out, how, cands, float(np.abs(v).max()), "chunk=4, L = S = 10")


# --- soft-capping ----------------------------------------------------------------------------
@_declinable
def _softcap(adapter, dtype):
    if (no := _needs(adapter, "softcap")):
        return no
    q, k, v, rng = _arrays(13, spread=3.0)
    c = 2.0
    s = _logits(q, k)
    mask = None
    if "float" in adapter.capabilities.mask_kinds:   # finite entries show a cap applied after the mask
        mask = np.round(rng.uniform(-3, 3, (1, 1, 4, 6)), 1)
        mask[..., 1] = -np.inf
    m = 0.0 if mask is None else mask
    out, how = _run(adapter, dtype, q, k, v, mask, softcap=c)
    cands = {"before_mask": _ref(q, k, v, mask, softcap=c),
             _named("opt_softcap", "clamp"): _attend(np.clip(s, -c, c) + m, v),
             "ignored": _ref(q, k, v, mask)}
    if mask is not None:
        cands[_named("opt_softcap", "after_mask")] = _attend(c * np.tanh((s + m) / c), v)
    return _result(out, how, cands, float(np.abs(v).max()), f"softcap={c}, logits up to {np.abs(s).max():.3g}"
                   + (", float mask with −∞ and finite entries" if mask is not None else ""))


@_declinable
def _softcap_zero(adapter, dtype):
    if (no := _needs(adapter, "softcap")):
        return no
    q, k, v, _ = _arrays(14, spread=3.0)
    out, how = _run(adapter, dtype, q, k, v, softcap=0.0)
    if out is None:
        return {"value": "rejects", "evidence": f"softcap=0.0: {how}"}
    cands = {_named("opt_softcap_zero", "zero_off"): _ref(q, k, v),
             _named("opt_softcap_zero", "collapse"): np.broadcast_to(v.mean(axis=2, keepdims=True), out.shape)}
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"softcap=0.0 accepted: distance to {_fmt(dist)}"}


# --- sinks -----------------------------------------------------------------------------------
@_declinable
def _sinks(adapter, dtype):
    if (no := _needs(adapter, "sinks")):
        return no
    q, k, v, _ = _arrays(15)
    sinks = np.array([1.0, -0.5])
    out, how = _run(adapter, dtype, q, k, v, sinks=sinks)
    spec = _ref(q, k, v, sinks=sinks)
    share = 1 - _attend(_logits(q, k), np.ones(k.shape[:3] + (1,)), sinks[None, :, None, None])
    cands = {"spec": spec, "ignored": _ref(q, k, v),
             _named("opt_sinks", "value_row"): spec + share * v[:, :, :1, :],
             _named("opt_sinks", "scaled"): _ref(q, k, v, sinks=sinks / np.sqrt(q.shape[-1]))}
    return _result(out, how, cands, float(np.abs(v).max()), "sinks [1.0, −0.5], H = 2")


# --- ALiBi -----------------------------------------------------------------------------------
@_declinable
def _alibi(adapter, dtype):
    if (no := _needs(adapter, "alibi_slopes")):
        return no
    q, k, v, _ = _arrays(16)
    m = np.array([0.5, 0.25])
    out, how = _run(adapter, dtype, q, k, v, alibi_slopes=m)
    rel = np.arange(6)[None, :] - np.arange(4)[:, None]                  # j − i (top-left)
    cands = {"spec": _ref(q, k, v, alibi_slopes=m), _named("opt_alibi", "sign"): _ref(q, k, v, alibi_slopes=-m),
             _named("opt_alibi", "per_key"): _attend(_logits(q, k) + m[None, :, None, None] * rel, v),
             "ignored": _ref(q, k, v)}
    return _result(out, how, cands, float(np.abs(v).max()), "alibi_slopes [0.5, 0.25], not causal, L=4, S=6")


@_declinable
def _alibi_alignment(adapter, dtype):
    if (no := _needs(adapter, "alibi_slopes")):
        return no
    if "bottom_right" not in adapter.capabilities.causal_alignments:
        return {"value": "unsupported", "evidence": "claims no bottom_right alignment"}
    q, k, v, _ = _arrays(17, l=3, s=8)
    m = np.array([0.5, 0.25])
    out, how = _run(adapter, dtype, q, k, v, alibi_slopes=m, causal_alignment="bottom_right")
    cands = {"aligned": _ref(q, k, v, alibi_slopes=m, causal_alignment="bottom_right"),
             _named("opt_alibi_alignment", "top_left"): _ref(q, k, v, alibi_slopes=m)}
    return _result(out, how, cands, float(np.abs(v).max()), "alibi_slopes, bottom_right, L=3, S=8")


# --- decode and ragged lengths ---------------------------------------------------------------
@_declinable
def _decode(adapter, dtype):
    if (no := _needs(adapter, "query_offset")):
        return no
    q, k, v, _ = _arrays(18, l=2, s=7)
    out, how = _run(adapter, dtype, q, k, v, is_causal=True, query_offset=np.array([5]))
    cands = {"spec": _ref(q, k, v, is_causal=True, query_offset=np.array([5])),
             _named("opt_decode", "top_left"): _ref(q, k, v, is_causal=True), "not_causal": _ref(q, k, v)}
    return _result(out, how, cands, float(np.abs(v).max()), "is_causal, query_offset=5, L=2, S=7")


@_declinable
def _key_lengths(adapter, dtype):
    if (no := _needs(adapter, "key_lengths")):
        return no
    q, k, v, _ = _arrays(19, b=2)
    kl = np.array([6, 3])
    out, how = _run(adapter, dtype, q, k, v, key_lengths=kl)
    cands = {"spec": _ref(q, k, v, key_lengths=kl), _named("opt_key_lengths", "ignored"): _ref(q, k, v)}
    return _result(out, how, cands, float(np.abs(v).max()), "key_lengths [6, 3], S=6")


@_declinable
def _query_lengths(adapter, dtype):
    if (no := _needs(adapter, "query_lengths")):
        return no
    q, k, v, _ = _arrays(20, b=2, l=3)
    ql = np.array([3, 1])
    out, how = _run(adapter, dtype, q, k, v, query_lengths=ql)
    spec = _ref(q, k, v, query_lengths=ql)
    nan = spec.copy()
    nan[1, :, 1:] = np.nan
    cands = {"zero": spec, _named("opt_query_lengths", "nan"): nan, _named("opt_query_lengths", "computed"): _ref(q, k, v)}
    if out is not None:   # only the padded rows decide: the valid ones are checked by the goldens
        out, cands = out[1, :, 1:], {n: c[1, :, 1:] for n, c in cands.items()}
    return _result(out, how, cands, float(np.abs(v).max()), "query_lengths [3, 1], L=3: padded rows")


@_declinable
def _positions(adapter, dtype):
    if (no := _needs(adapter, "key_lengths")):
        return no
    if "bottom_right" not in adapter.capabilities.causal_alignments:
        return {"value": "unsupported", "evidence": "claims no bottom_right alignment"}
    q, k, v, _ = _arrays(21, b=2, l=3, s=6)
    kl = np.array([6, 4])
    out, how = _run(adapter, dtype, q, k, v, is_causal=True, causal_alignment="bottom_right", key_lengths=kl)
    cands = {"per_sequence": _ref(q, k, v, is_causal=True, causal_alignment="bottom_right", key_lengths=kl),
             _named("opt_positions", "padded_lengths"): _ref(q, k, v, is_causal=True, key_lengths=kl,
                                                             query_offset=np.array([3, 3]))}
    return _result(out, how, cands, float(np.abs(v).max()), "is_causal bottom_right, key_lengths [6, 4], L=3, S=6")


_U = ("unsupported",)
ASPECTS = (
    Aspect("opt_window", "sdpa", _window, "sdpa.opt.window", "spec", _U),
    Aspect("opt_window_top_left", "sdpa", _window_alignment("top_left", "bottom_right"), "sdpa.opt.window", "aligned", _U),
    Aspect("opt_window_bottom_right", "sdpa", _window_alignment("bottom_right", "index_based"), "sdpa.opt.window",
           "aligned", _U),
    Aspect("opt_chunk", "sdpa", _chunk, "sdpa.opt.chunk", "spec", _U),
    Aspect("opt_softcap", "sdpa", _softcap, "sdpa.opt.softcap", "before_mask", _U),
    Aspect("opt_softcap_zero", "sdpa", _softcap_zero, "sdpa.opt.softcap", "rejects", _U),
    Aspect("opt_sinks", "sdpa", _sinks, "sdpa.opt.sinks", "spec", _U),
    Aspect("opt_alibi", "sdpa", _alibi, "sdpa.opt.alibi", "spec", _U),
    Aspect("opt_alibi_alignment", "sdpa", _alibi_alignment, "sdpa.opt.alibi", "aligned", _U),
    Aspect("opt_decode", "sdpa", _decode, "sdpa.opt.decode", "spec", _U),
    Aspect("opt_key_lengths", "sdpa", _key_lengths, "sdpa.opt.key_lengths", "spec", _U),
    Aspect("opt_query_lengths", "sdpa", _query_lengths, "sdpa.opt.query_lengths", "zero", _U),
    Aspect("opt_positions", "sdpa", _positions, "sdpa.opt.positions", "per_sequence", _U),
)
