"""Invariants of the sdpa kernel options (spec/invariants.md inv.opt.*): a window (∞, 0) is the
causal rule, widening a window never hides a key, soft-capping tends to no cap and bounds the
logits, a sink of −∞ is no sink (and a finite one scales a row down), decoding step by step
equals one causal pass, a chunk as long as the sequence is the causal rule, padding keys
(key_lengths) are invisible to every row of a window, drawn at L = S. Named by the sdpa registry
entry (`invariants=`); run by the core,
attnconf.conformance.checks.invariants.

Each property compares results of the implementation with each other (never with the
reference), each result allowed inv_ulps(sdpa, dtype) of the natural-scale bound max|v|, as the
sdpa invariants. An invariant runs only for an adapter whose Capabilities.sdpa_options lists the
options it needs; the alignments drawn are the adapter's claimed ones.
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, Invariant, Violation, assert_close, inv_ulps
from attnconf.conformance.checks.invariants.sdpa import value_scale
from attnconf.dtypes import EPS
from attnconf.errors import Unsupported

_FLOAT_INPUTS = ("sinks", "alibi_slopes")
_INDEX_INPUTS = ("query_offset", "key_lengths", "query_lengths")


def call(ctx: Context, q, k, v, **options) -> np.ndarray:
    """adapter.sdpa with the options in native form (floats in the dtype, integers as indices)."""
    ad = ctx.adapter
    native = {}
    for name, value in options.items():
        if name in _FLOAT_INPUTS:
            value = ad.from_numpy(np.asarray(value, np.float64), ctx.dtype)
        elif name in _INDEX_INPUTS:
            value = ad.index_from_numpy(np.asarray(value, np.int64))
        native[name] = value
    if q.shape[1] != k.shape[1]:
        native["enable_gqa"] = True
    out = np.asarray(ad.to_numpy(ad.sdpa(*(ad.from_numpy(a, ctx.dtype) for a in (q, k, v)), **native)))
    want = q.shape[:-1] + (v.shape[-1],)
    if out.shape != want:
        raise Violation(f"sdpa output should have shape {want}, but got {out.shape}")
    return out.astype(np.float64)


def _requires(*options, causal=False):
    def requires(caps, dtype):
        missing = [o for o in options if o not in caps.sdpa_options]
        if missing:
            return f"needs the sdpa option(s) {', '.join(missing)} (Capabilities.sdpa_options)"
        return "needs is_causal support" if causal and not caps.causal_alignments else ""
    return requires


def _examples(caps, dtype, **extra):
    from hypothesis import strategies as st

    aligns = tuple(caps.causal_alignments) or ("top_left",)
    return st.fixed_dictionaries({
        "B": st.integers(1, 2), "Hkv": st.integers(1, 2), "G": st.just(1), "L": st.integers(1, 6),
        "S": st.integers(1, 8), "E": st.integers(1, 4), "Ev": st.just(0), "seed": gen.SEEDS,
        "align": st.sampled_from(aligns), "left": st.sampled_from((None, 0, 1, 2, 4)),
        "right": st.sampled_from((None, 0, 1, 3)), **{k: st.just(v) for k, v in extra.items()}})


def _scale(v, h):
    return value_scale(v, h)


# --- inv.opt.window_causal -----------------------------------------------------------------------
def prop_window_causal(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    a, ulps = ex["align"], inv_ulps("sdpa", ctx.dtype)
    causal = call(ctx, q, k, v, is_causal=True, causal_alignment=a)
    window = call(ctx, q, k, v, window=(None, 0), causal_alignment=a)
    assert_close(window, causal, _scale(v, q.shape[1]), ulps, ctx.dtype,
                 f"window=(None, 0) without is_causal differs from is_causal=True ({a}, L={ex['L']}, S={ex['S']})")
    left = ex["left"]
    both = call(ctx, q, k, v, window=(left, 0), is_causal=True, causal_alignment=a)
    alone = call(ctx, q, k, v, window=(left, 0), causal_alignment=a)
    assert_close(both, alone, _scale(v, q.shape[1]), ulps, ctx.dtype,
                 f"adding is_causal=True to window=({left}, 0) changed the output ({a})")


# --- inv.opt.window_widening ---------------------------------------------------------------------
def _one_hot(ctx, ex):
    """(q, k, eye): V = one-hot rows (Ev = S), so an output row is the row's weights; E = S too
    for an adapter that needs Ev = E. Logits |s| <= √E: a visible key weighs >= exp(−2√E)/S."""
    s = ex["S"]
    if not ctx.caps.value_dim_differs:
        ex = dict(ex, E=s)
    q, k, _ = gen.sdpa_arrays(ex, ctx.dtype)
    eye = np.broadcast_to(np.eye(s), k.shape[:2] + (s, s)).copy()
    return q, k, eye, 0.25 * np.exp(-2.0 * np.sqrt(q.shape[-1])) / s


def _window_rows(ex, window, l, s):
    """(L,) bool: rows with a visible key in `window` (positions as sdpa.opt.positions)."""
    p = np.arange(l) + (s - l if ex["align"] == "bottom_right" else 0)
    rel = np.arange(s)[None, :] - p[:, None]
    left, right = window
    ok = np.ones(rel.shape, bool)
    if left is not None:
        ok &= rel >= -left
    if right is not None:
        ok &= rel <= right
    return ok.any(axis=-1)


def prop_window_widening(ctx, ex):
    q, k, v, thresh = _one_hot(ctx, ex)
    s, a = k.shape[2], ex["align"]
    narrow = (ex["left"], ex["right"])
    rng = np.random.default_rng(ex["seed"] + 1)
    wide = tuple(None if n is None or rng.random() < 0.3 else n + int(rng.integers(0, 3)) for n in narrow)
    wn = call(ctx, q, k, v, window=narrow, causal_alignment=a)
    ww = call(ctx, q, k, v, window=wide, causal_alignment=a)
    # rows the narrow window leaves empty follow the fully-masked policy (0, or uniform): skipped
    live = _window_rows(ex, narrow, q.shape[2], s)[None, None, :, None]
    lost = live & (wn > thresh) & ~(ww > thresh)
    if lost.any():
        idx = tuple(int(i) for i in np.argwhere(lost)[0])
        raise Violation(f"widening window {narrow} to {wide} ({a}) hid key {idx[3]} from query {idx[2]} "
                        f"(batch {idx[0]}, head {idx[1]}): weight {wn[idx]!r} -> {ww[idx]!r}")
    unbounded = call(ctx, q, k, v, window=(None, None), causal_alignment=a)
    plain = call(ctx, q, k, v, causal_alignment=a)
    assert_close(unbounded, plain, 1.0, inv_ulps("sdpa", ctx.dtype), ctx.dtype,
                 "window=(None, None) differs from no window")


# --- inv.opt.softcap_limit -----------------------------------------------------------------------
def prop_softcap_limit(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    ulps = inv_ulps("sdpa", ctx.dtype)
    plain = call(ctx, q, k, v)
    # |s| <= √E <= 2 (q, k in [−1, 1]): c·tanh(s/c) moves a logit by |s|³/(3c²) < 2^-60·|s| at
    # c = 2^30, < 2^-28·|s| at c = 2^14, which a float16 kernel can still hold (65504)
    huge = float(2.0 ** 30 if ctx.dtype == "float64" else 2.0 ** 14)
    capped = call(ctx, q, k, v, softcap=huge)
    assert_close(capped, plain, _scale(v, q.shape[1]), ulps, ctx.dtype, f"softcap={huge:g} differs from no softcap")
    # the bound: with logits scaled far beyond c, the capped ones lie in (−c, c), so within a row
    # no weight is below exp(−2c) times another (V one-hot rows: the output is the weights)
    c = (0.5, 1.0, 2.0)[ex["seed"] % 3]
    q1, k1, eye, _ = _one_hot(ctx, ex)
    big = gen.round_to(q1 * 64, ctx.dtype)
    w = call(ctx, big, k1, eye, softcap=c)
    slack = ulps * EPS[ctx.dtype]
    low = w.max(axis=-1, keepdims=True) * np.exp(-2 * c) - slack
    if np.any(w < low):
        idx = tuple(int(i) for i in np.argwhere(w < low)[0])
        raise Violation(f"softcap={c}: weight {w[idx]!r} at {idx} is below exp(−2c) = {np.exp(-2 * c):.4g} times its "
                        f"row's largest {float(w[idx[:3]].max())!r}: a capped logit left (−c, c)")


# --- inv.opt.sink_neg_inf ------------------------------------------------------------------------
def prop_sink_neg_inf(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    h, ulps = q.shape[1], inv_ulps("sdpa", ctx.dtype)
    plain = call(ctx, q, k, v)
    none = call(ctx, q, k, v, sinks=np.full(h, -np.inf))
    assert_close(none, plain, _scale(v, h), ulps, ctx.dtype, "sinks of −∞ differ from no sinks")
    # a finite sink scales a row's weights by one factor r < 1, the row's weight sum
    q1, k1, eye, _ = _one_hot(ctx, ex)
    rng = np.random.default_rng(ex["seed"] + 1)
    sinks = gen.round_to(rng.uniform(-2, 2, h), ctx.dtype)
    w0, ws = call(ctx, q1, k1, eye), call(ctx, q1, k1, eye, sinks=sinks)
    assert_close(ws, w0 * ws.sum(axis=-1, keepdims=True), 1.0, 2 * ulps, ctx.dtype,
                 f"sinks {sinks.tolist()} did not scale each row's weights by one factor (its weight sum)")


# --- inv.opt.decode ------------------------------------------------------------------------------
def prop_decode(ctx, ex):
    q, k, v = gen.sdpa_arrays(dict(ex, S=ex["L"]), ctx.dtype)
    window = {} if ex["left"] is None or "window" not in ctx.caps.sdpa_options else {"window": (ex["left"], 0)}
    _decode(ctx, ex, q, k, v, {})
    if window:
        try:
            _decode(ctx, ex, q, k, v, window)
        except Unsupported:   # a window with an offset it cannot place: the plain steps were checked
            pass


def _decode(ctx, ex, q, k, v, window):
    t, b = q.shape[2], q.shape[0]
    full = call(ctx, q, k, v, is_causal=True, **window)
    rng = np.random.default_rng(ex["seed"] + 1)
    cuts = sorted(set(int(c) for c in rng.integers(1, t, size=min(2, t - 1)))) if t > 1 else []
    for a, z in zip([0] + cuts, cuts + [t]):        # chunks [a, z) with the cache 0 … z − 1
        part = call(ctx, q[:, :, a:z], k[:, :, :z], v[:, :, :z], is_causal=True,
                    query_offset=np.full(b, a), **window)
        assert_close(part, full[:, :, a:z], _scale(v, q.shape[1]), inv_ulps("sdpa", ctx.dtype), ctx.dtype,
                     f"decoding queries {a} … {z - 1} against a cache of {z} keys (query_offset={a}"
                     f"{', window ' + str(window['window']) if window else ''}) differs from one causal pass")


# --- inv.opt.chunk_causal -----------------------------------------------------------------------
def prop_chunk_causal(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    a, ulps, s = ex["align"], inv_ulps("sdpa", ctx.dtype), k.shape[2]
    rng = np.random.default_rng(ex["seed"] + 1)
    causal = call(ctx, q, k, v, is_causal=True, causal_alignment=a)
    # one chunk holds every key and every query position (p_i <= max(L, S) − 1)
    big = max(s, q.shape[2]) + int(rng.integers(0, 3))
    whole = call(ctx, q, k, v, chunk=big, causal_alignment=a)
    assert_close(whole, causal, _scale(v, q.shape[1]), ulps, ctx.dtype,
                 f"chunk={big} >= S = {s} and every position differs from is_causal=True ({a}, L={ex['L']})")
    c = int(rng.integers(1, s + 1))
    alone = call(ctx, q, k, v, chunk=c, causal_alignment=a)
    both = call(ctx, q, k, v, chunk=c, is_causal=True, causal_alignment=a)
    assert_close(both, alone, _scale(v, q.shape[1]), ulps, ctx.dtype,
                 f"adding is_causal=True to chunk={c} changed the output ({a}): the chunk is causal by itself")
# --- inv.opt.padding_keys ------------------------------------------------------------------------
def _padding_examples(caps, dtype):
    """L = S always (the shape every restricted kernel takes), a window when the adapter has one,
    causal when it can be top-left, key_lengths drawn in the property (0 … S per sequence)."""
    from hypothesis import strategies as st

    causal = st.booleans() if "top_left" in caps.causal_alignments else st.just(False)
    return st.fixed_dictionaries({
        "B": st.integers(1, 3), "Hkv": st.integers(1, 2), "G": st.just(1), "L": st.integers(1, 8),
        "S": st.just(0), "E": st.integers(1, 4), "Ev": st.just(0), "seed": gen.SEEDS, "align": st.just("top_left"),
        "left": st.sampled_from((None, 0, 1, 2)), "right": st.sampled_from((None, 0, 1, 3)), "causal": causal})


def _visible_rows(n, window, causal: bool, l: int) -> np.ndarray:
    """(B, 1, L, 1) bool: rows with a visible key, top-left positions p_i = i, key j visible when
    j < n_b, inside the window and (causal) j <= i."""
    rel = np.arange(l)[None, :] - np.arange(l)[:, None]           # j − i, (L, S)
    ok = np.ones((l, l), bool)
    left, right = window
    if left is not None:
        ok &= rel >= -left
    if right is not None:
        ok &= rel <= right
    if causal:
        ok &= rel <= 0
    valid = np.arange(l)[None, None, :] < np.asarray(n)[:, None, None]   # (B, 1, S)
    return (ok[None] & valid).any(axis=-1)[:, None, :, None]


def prop_padding_keys(ctx, ex):
    ex = dict(ex, S=ex["L"])
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    b, h, l = q.shape[0], q.shape[1], q.shape[2]
    rng = np.random.default_rng(ex["seed"] + 1)
    n = rng.integers(0, l + 1, b)
    window = (ex["left"], ex["right"]) if "window" in ctx.caps.sdpa_options else (None, None)
    opts = dict(key_lengths=n, causal_alignment="top_left")
    if window != (None, None):
        opts["window"] = window
    if ex["causal"]:
        opts["is_causal"] = True
    pad = np.arange(l)[None, None, :, None] >= n[:, None, None, None]
    k2 = np.where(pad, gen.round_to(rng.uniform(-1, 1, k.shape), ctx.dtype), k)
    v2 = np.where(pad, gen.round_to(rng.uniform(-4, 4, v.shape), ctx.dtype), v)
    base, moved = call(ctx, q, k, v, **opts), call(ctx, q, k2, v2, **opts)
    visible = np.broadcast_to(_visible_rows(n, window, ex["causal"], l), base.shape)
    what = f"key_lengths={n.tolist()}, window={window}, is_causal={ex['causal']}, L = S = {l}"
    scale, ulps = np.maximum(_scale(v, h), _scale(v2, h)), inv_ulps("sdpa", ctx.dtype)
    # rows that see a key: the padding keys' contents must not matter
    assert_close(np.where(visible, moved, 0.0), np.where(visible, base, 0.0), scale, ulps, ctx.dtype,
                 f"changing only padding keys/values changed a row that sees a valid key ({what})")
    if ctx.caps.fully_masked == "zero":   # rows that see none are fully masked: 0 (sdpa.fully_masked)
        assert_close(np.where(visible, 0.0, base), np.zeros_like(base), scale, ulps, ctx.dtype,
                     f"rows whose window holds only padding keys should be 0 (sdpa.fully_masked), "
                     f"not an average of the values ({what})")


def _explicit_padding(caps):
    """Batch 0's late rows see only padding in a window (2, 0); batch 1 has no key at all."""
    base = {"B": 2, "Hkv": 2, "G": 1, "S": 0, "E": 4, "Ev": 0, "align": "top_left"}
    causal = "top_left" in caps.causal_alignments
    # and the edge L = S = E = 1 of every sdpa invariant (XLA's bfloat16 dot, jax.json)
    edge = dict(base, B=1, Hkv=1, L=1, E=1, seed=0, left=None, right=None, causal=False)
    return (edge, dict(base, L=8, seed=5, left=2, right=0, causal=causal),
            dict(base, L=6, seed=9, left=1, right=1, causal=False))


# L = 1, S = 2, E = 1: two of L, S, E equal to 1, where XLA on CPU rejects a bfloat16 dot (jax.json),
# so the records of that documented bug never depend on the draws (as the sdpa invariants' edges)
_EDGE = {"B": 1, "Hkv": 1, "G": 1, "L": 1, "S": 2, "E": 1, "Ev": 0, "seed": 0, "align": "top_left",
         "left": None, "right": None}


def _edges(caps):
    align = (tuple(caps.causal_alignments) or ("top_left",))[0]
    # and a square one (L = S, no GQA): a kernel that takes only L = S is judged on every option
    square = dict(_EDGE, B=2, Hkv=2, L=6, S=6, E=4, seed=3, align=align, left=2, right=0)
    return (dict(_EDGE, align=align), square)


def _explicit_decode(caps):
    """The edge, a single-token step after a long cache and a 4-token chunk: where top-left
    frontiers show."""
    base = {"B": 1, "Hkv": 1, "G": 1, "E": 4, "Ev": 0, "seed": 7, "align": "top_left", "right": None}
    return (_EDGE, dict(base, L=9, S=9, left=None), dict(base, L=12, S=12, left=2))


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.opt.window_causal", "sdpa", _examples, prop_window_causal,
              requires=_requires("window", causal=True), explicit=_edges),
    Invariant("inv.opt.window_widening", "sdpa", _examples, prop_window_widening, requires=_requires("window"),
              explicit=_edges),
    Invariant("inv.opt.softcap_limit", "sdpa", _examples, prop_softcap_limit, requires=_requires("softcap"),
              explicit=_edges),
    Invariant("inv.opt.sink_neg_inf", "sdpa", _examples, prop_sink_neg_inf, requires=_requires("sinks"),
              explicit=_edges),
    Invariant("inv.opt.chunk_causal", "sdpa", _examples, prop_chunk_causal,
              requires=_requires("chunk", causal=True), explicit=_edges),
    Invariant("inv.opt.decode", "sdpa", _examples, prop_decode, requires=_requires("query_offset", causal=True),
              explicit=_explicit_decode),
    Invariant("inv.opt.padding_keys", "sdpa", _padding_examples, prop_padding_keys,
              requires=_requires("key_lengths"), explicit=_explicit_padding),
)
