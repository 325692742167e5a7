"""Rotary position embeddings from given cos/sin caches (spec section `rope`, clauses
rope.cache.*): the reference, exact for the caches it is given.

For what: kernels that take precomputed tables indexed by positions (ONNX RotaryEmbedding-23,
vLLM rotary_embedding with cos_sin_cache, FlashInfer apply_rope_with_cos_sin_cache, FlashAttention
apply_rotary_emb): the numbers they must produce from *these* caches, whatever the caches hold
(ONNX's own backend cases use uniform random tables, not cos and sin). Must not: import any
framework; build angles (that is reference/rope.py); assume cos² + sin² = 1.

Math (per b, h, t; pair i = 0 … r/2 − 1 of channels (u_i, w_i) by the layout, rope.cache.pairing):

    c = cos_cache[position_ids[b, t], i],   s = sin_cache[position_ids[b, t], i]
    out[u_i] = x[u_i]·c − x[w_i]·s,   out[w_i] = x[w_i]·c + x[u_i]·s
    channels r … E − 1 pass through (rope.cache.partial)

Three flavours as every reference: default float64 (two products and a sum, rounded each);
exact=True: each output the exactly rounded value of its two-product expression (double-double,
≤ 0.5 ulp); precision="float32"|"float16"|"bfloat16": the same-precision baseline (inputs in the
dtype, products and sum in float32 for the half types, rounded once to the dtype).
Shapes: x (B, H, T, E), cos_cache and sin_cache (N, r/2), position_ids (B, T) integers in
[0, N); output x's shape.
"""
from __future__ import annotations

import numpy as np

from attnconf.reference import precise
from attnconf.reference.rope import check_rotary_dim, pairs
from attnconf.reference.rounding import to_dtype
from attnconf.validation import check_array, check_choice, fail

LAYOUTS = ("half", "interleaved")
PRECISIONS = (None, "float64", "float32", "float16", "bfloat16")


def check_arguments(x, cos_cache, sin_cache, position_ids, rotary_dim, layout, exact, precision):
    """(x, cos, sin, position_ids (B, T) int64, r): the one validation; errors that teach."""
    x = check_array("x", x, ndim=4, legend="(B, H, T, E)")
    b, _, t, e = x.shape
    r = check_rotary_dim(rotary_dim, e)
    caches = []
    for name, c in (("cos_cache", cos_cache), ("sin_cache", sin_cache)):
        c = check_array(name, c, ndim=2, legend="(N, r/2)")
        if c.shape[1] != r // 2:
            fail(f"{name} width", f"r/2 = {r // 2} (rotary_dim {r})", f"{c.shape[1]} (shape {c.shape})")
        if c.shape[0] < 1:
            fail(f"{name} rows N", ">= 1", c.shape[0])
        caches.append(c)
    if caches[0].shape != caches[1].shape:
        fail("sin_cache shape", f"the cos_cache's {caches[0].shape}", caches[1].shape)
    if not hasattr(position_ids, "shape") or not hasattr(position_ids, "dtype"):
        fail("position_ids", "an integer array of shape (B, T)", type(position_ids).__name__, TypeError)
    pos = np.asarray(position_ids)
    if not np.issubdtype(pos.dtype, np.integer):
        fail("position_ids dtype", "an integer dtype", str(pos.dtype), TypeError)
    if pos.shape != (b, t):
        fail("position_ids", f"of shape (B, T) = ({b}, {t})", f"shape {pos.shape}", verb="be")
    n = caches[0].shape[0]
    if pos.size and (int(pos.min()) < 0 or int(pos.max()) >= n):   # rope.cache.lookup
        fail("position_ids", f"cache rows in [0, N) = [0, {n})", f"range [{int(pos.min())}, {int(pos.max())}]")
    check_choice("layout", layout, LAYOUTS)
    check_choice("precision", precision, PRECISIONS)
    if not isinstance(exact, (bool, np.bool_)):
        fail("exact", "a bool", repr(exact), TypeError)
    if exact and precision not in (None, "float64"):
        fail("precision", "None or 'float64' when exact=True", repr(precision))
    return x, caches[0], caches[1], pos.astype(np.int64), r


def _lookup(cache, pos):
    """(B, 1, T, r/2): the cache rows of each token, broadcast over heads (rope.cache.lookup)."""
    return cache[pos][:, None]


def rope_cache(x, cos_cache, sin_cache, position_ids, *, rotary_dim=None, layout="half",
               exact=False, precision=None):
    """x rotated pair by pair by the cache rows its position_ids name (clauses rope.cache.*).

    x (B, H, T, E); cos_cache, sin_cache (N, r/2); position_ids (B, T) -> x's shape. layout
    "half" pairs (i, i + r/2), "interleaved" (2i, 2i + 1) (ONNX interleaved=0 / 1). Returns
    float64 for precision None/"float64" (exact=True: each element correctly rounded), else the
    named dtype.
    """
    x, cos, sin, pos, r = check_arguments(x, cos_cache, sin_cache, position_ids, rotary_dim, layout,
                                          exact, precision)
    ia, ib = pairs(r, layout)
    name = "float64" if precision is None else precision
    compute = np.float64 if name == "float64" else np.float32
    xs, cs, ss = (to_dtype(np.asarray(a, np.float64), name).astype(compute) for a in (x, cos, sin))
    c, s = _lookup(cs, pos), _lookup(ss, pos)
    a, b = xs[..., ia], xs[..., ib]
    out = xs.copy()                                       # rope.cache.partial: r … E − 1 pass through
    if exact:
        out[..., ia] = _dot2(a, c, -b, s)
        out[..., ib] = _dot2(b, c, a, s)
        return out
    out[..., ia] = a * c - b * s                          # rope.cache.rotation
    out[..., ib] = b * c + a * s
    return out if name == "float64" else to_dtype(out, name)


def _dot2(a, c, b, s):
    """fl(a·c + b·s) correctly rounded (to within the double-double's 2^-104): exact products."""
    p, e = precise.two_prod(a, c)
    q, f = precise.two_prod(b, s)
    hi, lo = precise.dd_add(p, e, q, f)
    return hi + lo


def natural_scale(x, cos_cache, sin_cache, position_ids, *, rotary_dim=None, layout="half"):
    """rope.cache.scale: |x_u·c| + |x_w·s| for a rotated channel (the sum of its terms' magnitudes),
    |x| for a pass-through channel."""
    x, cos, sin, pos, r = check_arguments(x, cos_cache, sin_cache, position_ids, rotary_dim, layout,
                                          False, None)
    ia, ib = pairs(r, layout)
    c, s = np.abs(_lookup(cos, pos)), np.abs(_lookup(sin, pos))
    ax = np.abs(x.astype(np.float64))
    out = ax.copy()
    out[..., ia] = ax[..., ia] * c + ax[..., ib] * s
    out[..., ib] = ax[..., ib] * c + ax[..., ia] * s
    return out
