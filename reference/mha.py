"""The multi-head attention layer (spec section `mha`): projections, heads, sdpa, output projection.

For what: the reference output of the canonical layer, in the same three flavours as sdpa
(default float64; exact=True golden grade with the projections as error-free double-double
products and sdpa's exact core kept in long double up to the output projection; the
same-precision baseline with every product rounded to the dtype).
Must not: import any framework; accept any weight layout other than the canonical one (adapters
translate framework layouts at their border).

Math (mha.weights, applied as x @ W + b):
    Q = xq @ wq + bq,  K = xkv @ wk + bk,  V = xkv @ wv + bv          (mha.projection, mha.bias)
    split (B, T, H·E) -> (B, T, H, E) -> (B, H, T, E): head h owns columns h·E … (h+1)·E − 1
    O = sdpa(Q, K, V, attn_mask, is_causal, enable_gqa = H != Hkv)      (mha.heads, mha.gqa, mha.mask)
    merge (B, H, L, Ev) -> (B, L, H·Ev);  out = merged @ wo + bo       (mha.output)
Shapes: query_input (B, L, D), key_value_input (B, S, Dkv) (None or the same array: self-attention,
mha.cross otherwise), wq (D, H·E), wk (Dkv, Hkv·E), wv (Dkv, Hkv·Ev), wo (H·Ev, D), biases
bq (H·E,), bk (Hkv·E,), bv (Hkv·Ev,), bo (D,). Output (B, L, D).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from attnconf.reference import precise
from attnconf.reference.sdpa import Arith, forward_exact_ld, forward_plain, prepare
from attnconf.validation import check_array, check_choice, check_int, fail

WEIGHT_NAMES = ("wq", "wk", "wv", "wo")
BIAS_NAMES = ("bq", "bk", "bv", "bo")
PRECISIONS = (None, "float64", "float32", "float16", "bfloat16")


@dataclasses.dataclass
class Layer:
    x: np.ndarray
    xkv: np.ndarray
    w: dict          # float64 weights and biases present
    heads: int
    kv_heads: int
    e: int
    ev: int


def check_layer(query_input, key_value_input, weights, num_heads, num_kv_heads) -> Layer:
    """Validate inputs and the canonical weight layout (mha.weights)."""
    x = check_array("query_input", query_input, ndim=3, legend="(B, L, D)")
    xkv = x if key_value_input is None else check_array(
        "key_value_input", key_value_input, ndim=3, legend="(B, S, Dkv)")
    if xkv.shape[0] != x.shape[0]:
        fail("key_value_input batch size B", str(x.shape[0]), f"{xkv.shape[0]} (shape {xkv.shape})")
    h = check_int("num_heads", num_heads, minimum=1)
    hkv = h if num_kv_heads is None else check_int("num_kv_heads", num_kv_heads, minimum=1)
    if h % hkv:
        fail("num_heads", f"a multiple of num_kv_heads = {hkv}", h)
    if not isinstance(weights, dict):
        fail("weights", "a dict with wq, wk, wv, wo (and optional bq, bk, bv, bo)",
             type(weights).__name__, TypeError)
    unknown = sorted(set(weights) - set(WEIGHT_NAMES) - set(BIAS_NAMES))
    if unknown:
        fail("weights keys", "among " + ", ".join(WEIGHT_NAMES + BIAS_NAMES), ", ".join(unknown))
    for name in WEIGHT_NAMES:
        if name not in weights:
            fail("weights", f"a dict containing {name!r}", f"keys {sorted(weights)}")
    w = {name: check_array(name, weights[name], ndim=2) for name in WEIGHT_NAMES}
    d, dkv = x.shape[2], xkv.shape[2]
    if w["wq"].shape[0] != d or w["wq"].shape[1] % h:
        fail("wq shape", f"(D, H·E) with D = {d} and columns a multiple of H = {h}", str(w["wq"].shape))
    e = w["wq"].shape[1] // h
    if w["wk"].shape != (dkv, hkv * e):
        fail("wk shape (Dkv, Hkv·E)", str((dkv, hkv * e)), str(w["wk"].shape))
    if w["wv"].shape[0] != dkv or w["wv"].shape[1] % hkv:
        fail("wv shape", f"(Dkv, Hkv·Ev) with Dkv = {dkv} and columns a multiple of Hkv = {hkv}",
             str(w["wv"].shape))
    ev = w["wv"].shape[1] // hkv
    if w["wo"].shape != (h * ev, d):
        fail("wo shape (H·Ev, D)", str((h * ev, d)), str(w["wo"].shape))
    sizes = {"bq": h * e, "bk": hkv * e, "bv": hkv * ev, "bo": d}
    for name in BIAS_NAMES:
        if weights.get(name) is not None:
            bias = check_array(name, weights[name], ndim=1)
            if bias.shape != (sizes[name],):
                fail(f"{name} shape", str((sizes[name],)), str(bias.shape))
            w[name] = bias
    w = {k: v.astype(np.float64) for k, v in w.items()}
    return Layer(x.astype(np.float64), xkv.astype(np.float64), w, h, hkv, e, ev)


def split_heads(t: np.ndarray, heads: int) -> np.ndarray:
    """mha.heads: (B, T, H·E) -> (B, H, T, E), head h owns columns h·E … (h+1)·E − 1."""
    b, n, he = t.shape
    return t.reshape(b, n, heads, he // heads).transpose(0, 2, 1, 3)


def merge_heads(t: np.ndarray) -> np.ndarray:
    """(B, H, L, Ev) -> (B, L, H·Ev)."""
    b, h, l, ev = t.shape
    return t.transpose(0, 2, 1, 3).reshape(b, l, h * ev)


def _problem(ly: Layer, q, k, v, attn_mask, is_causal, fully_masked="zero"):
    return prepare(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                   enable_gqa=ly.heads != ly.kv_heads, fully_masked=fully_masked)


def forward_plain_layer(ly: Layer, attn_mask, is_causal, ar: Arith, fully_masked="zero"):
    """(out, p) by the straightforward algorithm in ar's precision (compute dtype)."""
    w = {k: ar.input(v) for k, v in ly.w.items()}
    x, xkv = ar.input(ly.x), ar.input(ly.xkv)

    def proj(inp, wn, bn):  # mha.projection, mha.bias: f32 accumulation, one rounding
        y = np.matmul(inp, w[wn])
        if bn in w:
            y = y + w[bn]
        return ar.round(y)

    q = split_heads(proj(x, "wq", "bq"), ly.heads)
    k = split_heads(proj(xkv, "wk", "bk"), ly.kv_heads)
    v = split_heads(proj(xkv, "wv", "bv"), ly.kv_heads)
    pb = _problem(ly, q, k, v, attn_mask, is_causal, fully_masked)
    o, p, _ = forward_plain(pb, ar, pb.q.astype(ar.compute), pb.k.astype(ar.compute),
                            pb.v.astype(ar.compute))
    return proj(merge_heads(o), "wo", "bo"), p


def forward_exact(ly: Layer, attn_mask, is_causal) -> np.ndarray:
    """Golden-grade output: dd projections, exact sdpa core in long double, one final rounding."""
    w = ly.w

    def proj_dd(inp, wn, bn, heads):
        hi, lo = precise.dd_matmul(inp, w[wn])
        if bn in w:
            hi, lo = precise.dd_add(hi, lo, np.broadcast_to(w[bn], hi.shape), np.zeros_like(hi))
        return split_heads(hi, heads), split_heads(lo, heads)

    qh, ql = proj_dd(ly.x, "wq", "bq", ly.heads)
    kh, kl = proj_dd(ly.xkv, "wk", "bk", ly.kv_heads)
    vh, vl = proj_dd(ly.xkv, "wv", "bv", ly.kv_heads)
    pb = _problem(ly, qh, kh, vh, attn_mask, is_causal)
    g = pb.group
    rep = (lambda t: np.repeat(t, g, axis=1)) if g > 1 else (lambda t: t)
    o, _, _ = forward_exact_ld(pb, q_lo=ql, k_lo=rep(kl), v_lo=rep(vl))
    out = precise.ld_matmul(merge_heads(o), w["wo"])
    if "bo" in w:
        out = out + w["bo"].astype(np.longdouble)
    return out.astype(np.float64)


def multi_head_attention(query_input, key_value_input, weights, *, num_heads, num_kv_heads=None,
                         attn_mask=None, is_causal=False, exact=False, precision=None):
    """The canonical multi-head attention layer (spec section mha): (B, L, D) -> (B, L, D).

    key_value_input None (or query_input itself) = self-attention. weights: the canonical dict
    (wq, wk, wv, wo, optional bq, bk, bv, bo), applied as x @ W + b. float64 unless precision
    names a lower dtype; exact=True is golden grade.
    """
    check_choice("precision", precision, PRECISIONS)
    if not isinstance(exact, (bool, np.bool_)):
        fail("exact", "a bool", repr(exact), TypeError)
    if exact and precision not in (None, "float64"):
        fail("precision", "None or 'float64' when exact=True", repr(precision))
    ly = check_layer(query_input, key_value_input, weights, num_heads, num_kv_heads)
    if exact and not precise.HAVE_LONGDOUBLE:  # no 80-bit long double: the mpmath oracle (slow)
        from attnconf.reference import oracle
        return oracle.multi_head_attention(ly.x, ly.xkv, ly.w, num_heads=ly.heads,
                                           num_kv_heads=ly.kv_heads, attn_mask=attn_mask,
                                           is_causal=is_causal)
    if exact:
        return forward_exact(ly, attn_mask, is_causal)
    ar = Arith(precision)
    out, _ = forward_plain_layer(ly, attn_mask, is_causal, ar)
    return ar.output(out)


def natural_scale(query_input, key_value_input, weights, *, num_heads, num_kv_heads=None,
                  attn_mask=None, is_causal=False) -> np.ndarray:
    """Natural scale of each output element (spec/accuracy.md):

    Vn = |xkv|·|wv| + |bv| (the scale of the value projection), Nh = P·Vn per head (P from the
    default path, fully-masked rows uniform), out_n = merge(N)·|wo| + |bo|.
    """
    ly = check_layer(query_input, key_value_input, weights, num_heads, num_kv_heads)
    _, p = forward_plain_layer(ly, attn_mask, is_causal, Arith(None), fully_masked="uniform")
    vn = np.matmul(np.abs(ly.xkv), np.abs(ly.w["wv"]))
    if "bv" in ly.w:
        vn = vn + np.abs(ly.w["bv"])
    vn = split_heads(vn, ly.kv_heads)
    g = ly.heads // ly.kv_heads
    if g > 1:
        vn = np.repeat(vn, g, axis=1)
    n = merge_heads(np.matmul(p, vn))
    out = np.matmul(n, np.abs(ly.w["wo"]))
    if "bo" in ly.w:
        out = out + np.abs(ly.w["bo"])
    return out
