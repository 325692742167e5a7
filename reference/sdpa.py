"""Scaled dot-product attention (spec section `sdpa`): the canonical reference evaluation.

Size (~440 lines): the three evaluation paths (default, exact double-double, same-precision
baseline) share one argument check and one preparation of masks and options; split apart they
would each re-derive them. The kernel options' own arithmetic is reference/sdpa_options.py.

For what: the numbers every implementation is judged against, in three flavours —
  * default (precision=None): float64, the straightforward algorithm (logits by one matrix
    product, max-subtracted softmax, P·V); <= 8 ulp of natural scale for moderate logits;
  * exact=True: golden grade, <= 1 ulp of natural scale: logits as an error-free double-double
    product (precise.dd_matmul), exponentials and sums in 80-bit long double, one final rounding;
  * precision="float32" | "float16" | "bfloat16": the same algorithm run the way a straightforward
    correct implementation in that dtype runs it (the tolerance rule's baseline, tol.baseline).
Must not: import any framework; change a semantic without a spec version change.

Math (per batch b, query head h, query i; G = H / Hkv, g(h) = h // G):

    s_ij = scale · Σ_e q[b,h,i,e] · k[b,g(h),j,e]  (+ float mask_ij; −∞ where hidden)
    p_ij = exp(s_ij − max_j s_ij) / Σ_j exp(s_ij − max_j s_ij)
    out[b,h,i,:] = Σ_j p_ij · v[b,g(h),j,:]

Shapes: query (B, H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev), attn_mask broadcastable
to (B, H, L, S), output (B, H, L, Ev).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from attnconf.reference import precise
from attnconf.reference import sdpa_options as opt
from attnconf.reference.rounding import to_dtype
from attnconf.validation import check_array, check_choice, fail

CAUSAL_ALIGNMENTS = ("top_left", "bottom_right")
FULLY_MASKED_POLICIES = ("zero", "uniform", "nan")
PRECISIONS = (None, "float64", "float32", "float16", "bfloat16")


# --- dispatch hook for the blocked evaluation (owned by the speed work, reference/blocked.py) --
def _use_blocked(batch: int, heads: int, queries: int, keys: int, exact: bool, precision) -> bool:
    """Whether the default path should hand this problem to reference/blocked.py.

    From B·H·L·S >= blocked.DISPATCH_MIN_LOGITS (4 Mi logits: several (B, H, L, S) float64
    arrays would be held at once). Only the float64 default path is dispatched: exact and
    lower-precision paths stay here. Checked before prepare(), which builds (B, H, L, S) masks.
    """
    if exact or precision not in (None, "float64"):
        return False
    from attnconf.reference import blocked

    return blocked.should_dispatch(batch, heads, queries, keys)


@dataclasses.dataclass
class Problem:
    """Validated sdpa arguments, K/V already repeated to H heads (sdpa.gqa)."""

    q: np.ndarray            # (B, H, L, E) float64
    k: np.ndarray            # (B, H, S, E) float64, head h = key head h // G
    v: np.ndarray            # (B, H, S, Ev) float64
    additive: np.ndarray | None   # finite part of a float mask, broadcastable to (B, H, L, S)
    allowed: np.ndarray | None    # bool (B, H, L, S) view: key takes part; None = all take part
    scale_dd: tuple[float, float]  # the exact scale as a double-double
    fully_masked: str
    group: int               # G = H // Hkv
    in_dtype: np.dtype
    mask_dtype: np.dtype | None
    # the options of sdpa.opt.* (reference/sdpa_options.py); None = unset
    softcap: float | None = None          # c: logits <- c·tanh(logits / c) before mask and bias
    bias: np.ndarray | None = None        # ALiBi −m·|p_i − j|, broadcastable to (B, H, L, S)
    sinks: np.ndarray | None = None       # (1, H, 1, 1) sink logits
    padded: np.ndarray | None = None      # (B, 1, L, 1) padded query rows (output 0)

    @property
    def scale(self) -> float:
        return self.scale_dd[0]

    @property
    def shape(self) -> tuple[int, int, int, int]:  # (B, H, L, S)
        b, h, l, _ = self.q.shape
        return b, h, l, self.k.shape[2]


def check_options(*, precision, exact, fully_masked="zero", causal_alignment="top_left") -> None:
    check_choice("precision", precision, PRECISIONS)
    check_choice("fully_masked", fully_masked, FULLY_MASKED_POLICIES)
    check_choice("causal_alignment", causal_alignment, CAUSAL_ALIGNMENTS)
    if not isinstance(exact, (bool, np.bool_)):
        fail("exact", "a bool", repr(exact), TypeError)
    if exact and precision not in (None, "float64"):
        fail("precision", "None or 'float64' when exact=True", repr(precision))


def check_arguments(query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
                    scale=None, enable_gqa=False, fully_masked="zero", **options):
    """The one validation of the sdpa arguments (sdpa.layout, sdpa.gqa, sdpa.scale.*, sdpa.mask.*,
    sdpa.opt.*), for the default, exact, baseline and blocked paths alike, so a bad input reads
    the same at every size. `options`: window, softcap, sinks, alibi_slopes, query_offset,
    key_lengths, query_lengths, chunk (reference/sdpa_options.py). Returns (q, k, v, scale_dd, mask,
    opts): the checked arrays, the exact scale as a double-double, the mask as an array (None
    when there is none) and the validated options (sdpa_options.Options)."""
    unknown = sorted(set(options) - set(opt.OPTION_NAMES))
    if unknown:
        fail("sdpa option", "one of " + ", ".join(opt.OPTION_NAMES), ", ".join(unknown), TypeError)
    q = check_array("query", query, ndim=4, legend="(B, H, L, E)")
    k = check_array("key", key, ndim=4, legend="(B, Hkv, S, E)")
    v = check_array("value", value, ndim=4, legend="(B, Hkv, S, Ev)")
    for name, arr in (("key", k), ("value", v)):
        if arr.dtype != q.dtype:
            fail(f"{name} dtype", f"{q.dtype} (the query's dtype)", str(arr.dtype), TypeError)
    b, h, l, e = q.shape
    hkv, s = k.shape[1], k.shape[2]
    if k.shape[0] != b:
        fail("key batch size B", str(b), f"{k.shape[0]} (shape {k.shape})")
    if k.shape[3] != e:
        fail("key head dim E", f"{e} (the query's last dim)", f"{k.shape[3]} (shape {k.shape})")
    if v.shape[:3] != k.shape[:3]:
        fail("value shape (B, Hkv, S)", str(k.shape[:3]), f"{v.shape[:3]} (shape {v.shape})")
    if min(b, h, l, e, hkv, s) < 1:
        fail("B, H, L, E, Hkv and S", ">= 1", f"query shape {q.shape}, key shape {k.shape}")
    if h % hkv != 0:
        fail("query heads H", f"a multiple of key/value heads Hkv = {hkv}", f"H = {h}")
    if h != hkv and not enable_gqa:
        fail("enable_gqa", f"True when H != Hkv (H = {h}, Hkv = {hkv})", repr(enable_gqa))
    check_choice("fully_masked", fully_masked, FULLY_MASKED_POLICIES)
    check_choice("causal_alignment", causal_alignment, CAUSAL_ALIGNMENTS)
    if not isinstance(is_causal, (bool, np.bool_)):
        fail("is_causal", "a bool", repr(is_causal), TypeError)

    # sdpa.scale.default / sdpa.scale.explicit: the default is the real number 1/√E.
    if scale is None:
        scale_dd = precise.inv_sqrt_dd(e)
    else:
        if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (int, float, np.floating, np.integer)):
            fail("scale", "a real number or None", repr(scale), TypeError)
        if not math.isfinite(float(scale)):
            fail("scale", "finite", repr(scale))
        scale_dd = (float(scale), 0.0)
    m = None
    if attn_mask is not None:
        if not hasattr(attn_mask, "shape") or not hasattr(attn_mask, "dtype"):
            fail("attn_mask", "an array or None", type(attn_mask).__name__, TypeError)
        m = np.asarray(attn_mask)
        if not _broadcasts_to(m.shape, (b, h, l, s)):  # sdpa.mask.broadcast
            fail("attn_mask", f"broadcastable to (B, H, L, S) = {(b, h, l, s)}", f"shape {m.shape}")
        if m.dtype != np.bool_ and not (np.issubdtype(m.dtype, np.floating) or str(m.dtype) == "bfloat16"):
            fail("attn_mask dtype", "bool or floating", str(m.dtype), TypeError)
        if m.dtype != np.bool_:
            m64 = m.astype(np.float64)
            if np.isnan(m64).any() or np.isposinf(m64).any():   # sdpa.mask.float
                fail("attn_mask", "finite or −inf (no NaN or +inf)", "NaN or +inf entries")
    opts = opt.check((b, h, l, s), causal_alignment=causal_alignment, **options)
    return q, k, v, scale_dd, m, opts


def prepare(query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
            scale=None, enable_gqa=False, fully_masked="zero", **options) -> Problem:
    """Validate the sdpa arguments (check_arguments) and build a Problem."""
    q, k, v, scale_dd, m, opts = check_arguments(
        query, key, value, attn_mask=attn_mask, is_causal=is_causal, causal_alignment=causal_alignment,
        scale=scale, enable_gqa=enable_gqa, fully_masked=fully_masked, **options)
    b, h, l, _ = q.shape
    hkv, s = k.shape[1], k.shape[2]

    # sdpa.gqa: query head h reads key/value head h // G (repeat_interleave order).
    group = h // hkv
    q64 = q.astype(np.float64)
    k64 = np.repeat(k.astype(np.float64), group, axis=1) if group > 1 else k.astype(np.float64)
    v64 = np.repeat(v.astype(np.float64), group, axis=1) if group > 1 else v.astype(np.float64)

    full = (b, h, l, s)
    additive, allowed, mask_dtype = None, None, None
    if m is not None:
        mask_dtype = m.dtype
        if m.dtype == np.bool_:
            # sdpa.mask.bool: True = the key takes part.
            allowed = np.broadcast_to(m, full)
        elif np.issubdtype(m.dtype, np.floating) or str(m.dtype) == "bfloat16":
            # sdpa.mask.float: added to the scaled logits; −∞ hides a key like False.
            m64 = m.astype(np.float64)
            hidden = np.isneginf(m64)
            additive = np.where(hidden, 0.0, m64)
            if hidden.any():
                allowed = np.broadcast_to(~hidden, full)
    if not opts.any():
        if is_causal:
            # sdpa.causal.top_left: j <= i;  sdpa.causal.bottom_right: j <= i + S − L.
            shift = 0 if causal_alignment == "top_left" else s - l
            tri = np.arange(s)[None, :] <= np.arange(l)[:, None] + shift
            # sdpa.mask_and_causal: the intersection.
            allowed = np.broadcast_to(tri, full) if allowed is None else (allowed & tri)
            allowed = np.broadcast_to(allowed, full)
        return Problem(q64, k64, v64, additive, allowed, scale_dd, fully_masked, group, q.dtype, mask_dtype)
    # sdpa.opt.positions: p_i; the causal rule, the window and the key lengths measure j − p_i.
    pos = opt.query_positions(full, causal_alignment, opts)
    vis = opt.visibility(full, pos, is_causal, opts)
    if vis is not None:  # sdpa.mask_and_causal / sdpa.opt.*: the intersection
        allowed = np.broadcast_to(vis, full) if allowed is None else np.broadcast_to(allowed & vis, full)
    return Problem(q64, k64, v64, additive, allowed, scale_dd, fully_masked, group, q.dtype, mask_dtype,
                   softcap=opts.softcap, bias=opt.alibi_bias(full, pos, opts),
                   sinks=opt.sink_logits(opts), padded=opt.padded_rows(full, opts))


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether an array of `shape` broadcasts to exactly `target` (NumPy rules, right-aligned)."""
    if len(shape) > len(target):
        return False
    return all(a in (1, t) for a, t in zip(shape[::-1], target[::-1]))


# ---------------------------------------------------------------------------------------------
# Straightforward algorithm, in float64 (default path) or in a lower precision (baseline).
# ---------------------------------------------------------------------------------------------

class Arith:
    """How the straightforward algorithm holds numbers: storage dtype and compute dtype.

    float64 / float32: everything in that dtype. float16 / bfloat16 (tol.baseline): inputs in
    the dtype, matrix products accumulated in float32 and rounded to the dtype, softmax in
    float32, probabilities rounded to the dtype before P·V, outputs rounded.
    """

    def __init__(self, precision):
        from attnconf.dtypes import numpy_dtype

        self.name = "float64" if precision is None else precision
        self.dtype = numpy_dtype(self.name)
        self.compute = np.dtype(np.float64) if self.name == "float64" else np.dtype(np.float32)

    # Every rounding to float16/bfloat16 is the project's rule (reference/rounding.py, once,
    # nearest-even), not a dependency's cast: ml_dtypes rounds float64 -> bfloat16 twice in 0.5.

    def input(self, x):
        """An input as the implementation under this precision receives it, in compute dtype."""
        return to_dtype(x, self.name).astype(self.compute)

    def round(self, x):
        """Round a compute-dtype intermediate to the storage dtype (no-op for f64/f32)."""
        if self.dtype == self.compute:
            return x
        return to_dtype(x, self.name).astype(self.compute)

    def matmul(self, a, b):
        return self.round(np.matmul(a, b))

    def output(self, x):
        return to_dtype(x, self.name)


def logits_plain(pb: Problem, ar: Arith, q=None, k=None):
    """The logits s (B, H, L, S) in ar.compute dtype, −∞ where a key is hidden: the steps of
    forward_plain before the softmax (also the log-sum-exp's, reference/lse.py)."""
    c = ar.compute
    q = ar.input(pb.q) if q is None else q
    k = ar.input(pb.k) if k is None else k
    # sdpa.logits: one product, scaled (the scale rounded once to the compute dtype).
    s = ar.round(np.matmul(q, np.swapaxes(k, -1, -2)) * c.type(pb.scale))
    if pb.softcap is not None:  # sdpa.opt.softcap: before the mask and the bias
        cap = c.type(pb.softcap)
        s = ar.round(cap * np.tanh(s / cap))
    if pb.bias is not None:  # sdpa.opt.alibi: the kernel forms −m·|p − j| in its compute dtype
        s = s + pb.bias.astype(c)
    if pb.additive is not None:  # sdpa.mask.float (mask as the implementation receives it)
        s = s + ar.input(pb.additive)
    if pb.allowed is not None:  # sdpa.mask.bool, sdpa.causal.*, sdpa.mask_and_causal, sdpa.opt.*
        s = np.where(pb.allowed, s, c.type(-np.inf))
    return s


def forward_plain(pb: Problem, ar: Arith, q=None, k=None, v=None):
    """(out, p, full) by the straightforward algorithm; out/p in ar.compute dtype.

    `full` (B, H, L, 1) marks fully-masked rows. q/k/v override the Problem's (already in
    compute dtype), for callers that projected them themselves (mha).
    """
    c = ar.compute
    v = ar.input(pb.v) if v is None else v
    s = logits_plain(pb, ar, q, k)
    # sdpa.softmax: subtract the row max so exp never overflows (sdpa.range).
    m = np.max(s, axis=-1, keepdims=True)
    sink = None if pb.sinks is None else ar.input(pb.sinks)
    if sink is not None:  # sdpa.opt.sinks: the sink joins the max and the denominator
        m = np.maximum(m, sink)
    full = np.isneginf(m)  # sdpa.fully_masked: every logit −∞ (and no sink)
    shift = np.where(full, c.type(0), m)
    e = np.exp(s - shift)
    z = np.sum(e, axis=-1, keepdims=True)
    if sink is not None:
        z = z + np.exp(sink - shift)
    p = e / np.where(full, c.type(1), z)
    p = apply_policy_p(p, full, pb.fully_masked)
    if pb.padded is not None:  # sdpa.opt.query_lengths: padded rows give 0
        p = np.where(pb.padded, c.type(0), p)
    # sdpa.output: probabilities in the storage dtype, P·V.
    out = ar.matmul(ar.round(p), v)
    return out, p, full


def apply_policy_p(p, full, policy):
    """sdpa.fully_masked: the probabilities a fully-masked row uses under each policy."""
    if not full.any():
        return p
    if policy == "zero":
        fill = 0.0
    elif policy == "uniform":
        fill = 1.0 / p.shape[-1]  # mean of V over all S keys (JAX/Keras)
    else:
        fill = np.nan
    return np.where(full, p.dtype.type(fill), p)


# ---------------------------------------------------------------------------------------------
# Exact path: double-double logits, long-double softmax and P·V.
# ---------------------------------------------------------------------------------------------

def logits_dd(pb: Problem, q_lo=None, k_lo=None):
    """scale · q·kᵀ (+ float mask) as a double-double, error <= 2^-100 of Σ|q||k|·scale.

    q_lo/k_lo: optional low parts when q and k are themselves double-doubles (mha); the
    lo·lo product (2^-106 relative) is dropped.
    """
    kt = np.swapaxes(pb.k, -1, -2)
    pairs = [(pb.q, kt)]
    if k_lo is not None:
        pairs.append((pb.q, np.swapaxes(k_lo, -1, -2)))
    if q_lo is not None:
        pairs.append((q_lo, kt))
    sh, sl = precise.dd_matmul_sum(pairs)
    sh, sl = precise.dd_mul(sh, sl, *pb.scale_dd)
    if pb.softcap is not None:  # sdpa.opt.softcap in long double: c·tanh(s/c), |d/ds| <= 1
        cap = np.longdouble(pb.softcap)
        t = cap * np.tanh((sh.astype(np.longdouble) + sl.astype(np.longdouble)) / cap)
        sh = t.astype(np.float64)
        sl = (t - sh.astype(np.longdouble)).astype(np.float64)
    for add in (pb.bias, pb.additive):  # sdpa.opt.alibi, sdpa.mask.float: one dd sum each
        if add is not None:
            add = np.broadcast_to(add, sh.shape)
            sh, sl = precise.dd_add(sh, sl, add, np.zeros_like(sh))
    return sh, sl


def probabilities_ld(pb: Problem, sh, sl):
    """(p, full): softmax of the dd logits in long double, relative error ~2^-61 per entry."""
    allowed = pb.allowed
    if allowed is not None:
        sh = np.where(allowed, sh, -np.inf)
    m = np.max(sh, axis=-1, keepdims=True)  # the shift need not be the dd max: any nearby value
    if pb.sinks is not None:  # sdpa.opt.sinks
        m = np.maximum(m, pb.sinks)
    full = np.isneginf(m)
    m = np.where(full, 0.0, m)
    with np.errstate(invalid="ignore"):  # hidden entries (−∞) give NaN here, zeroed below
        t, te = precise.two_sum(sh, -m)  # exact: t + te = sh − m
        corr = np.where(np.isneginf(sh), 0.0, te + sl)  # <= 2^-52 |sh|: exp(corr) ≈ 1 + corr
        e = np.exp(t.astype(np.longdouble)) * np.exp(corr.astype(np.longdouble))
    if allowed is not None:
        e = np.where(allowed, e, np.longdouble(0))
    z = np.sum(e, axis=-1, keepdims=True)
    if pb.sinks is not None:  # exp(sink − m): sink − m exact in two_sum's two parts
        with np.errstate(invalid="ignore"):  # a −∞ sink: exp(−∞) = 0, its NaN low part dropped
            u, ue = precise.two_sum(np.broadcast_to(pb.sinks, m.shape), -m)
            ue = np.where(np.isfinite(u), ue, 0.0)
        z = z + np.exp(u.astype(np.longdouble)) * np.exp(ue.astype(np.longdouble))
    p = e / np.where(full, np.longdouble(1), z)
    p = apply_policy_p(p, full, pb.fully_masked)
    if pb.padded is not None:  # sdpa.opt.query_lengths
        p = np.where(pb.padded, np.longdouble(0), p)
    return p, full


def forward_exact_ld(pb: Problem, q_lo=None, k_lo=None, v_lo=None):
    """(out, p, full) with out and p in long double, before the final rounding."""
    if not precise.HAVE_LONGDOUBLE:
        raise NotImplementedError("exact path needs an 80-bit long double; use oracle.sdpa")
    sh, sl = logits_dd(pb, q_lo, k_lo)
    p, full = probabilities_ld(pb, sh, sl)
    v = precise.to_ld(pb.v, v_lo)
    out = precise.ld_matmul(p, v)
    return out, p, full


# ---------------------------------------------------------------------------------------------
# Public function.
# ---------------------------------------------------------------------------------------------

def sdpa(query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
         scale=None, enable_gqa=False, window=None, softcap=None, sinks=None, alibi_slopes=None,
         query_offset=None, key_lengths=None, query_lengths=None, chunk=None, fully_masked="zero",
         exact=False, precision=None):
    """Scaled dot-product attention, the canonical reference (spec section sdpa).

    out[b,h,i,:] = Σ_j softmax_j(scale·q_i·k_j + mask_ij) · v[b, h // (H/Hkv), j, :]

    with the options of current kernels (spec/sdpa_options.md, reference/sdpa_options.py):
    window, softcap, sinks, alibi_slopes, query_offset, key_lengths, query_lengths, chunk.
    query (B, H, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev) -> (B, H, L, Ev).
    Returns float64 for precision None/"float64" (default path, or exact=True: <= 1 ulp of
    natural scale), else an array of the named dtype (the same-precision baseline).
    """
    check_options(precision=precision, exact=exact, fully_masked=fully_masked,
                  causal_alignment=causal_alignment)
    options = {k: v for k, v in dict(window=window, softcap=softcap, sinks=sinks, alibi_slopes=alibi_slopes,
                                     query_offset=query_offset, key_lengths=key_lengths,
                                     query_lengths=query_lengths, chunk=chunk).items() if v is not None}
    from attnconf.reference import blocked  # SPEED HOOK: large inputs, before prepare's masks
    # the blocked path knows no sdpa.opt.* option: such a case stays on the unblocked path
    if not options and _use_blocked(*blocked.logit_shape(query, key), exact, precision):
        return blocked.sdpa(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                            causal_alignment=causal_alignment, scale=scale,
                            enable_gqa=enable_gqa, fully_masked=fully_masked)
    pb = prepare(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                 causal_alignment=causal_alignment, scale=scale, enable_gqa=enable_gqa,
                 fully_masked=fully_masked, **options)
    if exact and not precise.HAVE_LONGDOUBLE and options:  # the oracle of the options (slow)
        from attnconf.reference import oracle
        return oracle.sdpa_options(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                                   causal_alignment=causal_alignment, scale=scale,
                                   fully_masked=fully_masked, **options)
    if exact and not precise.HAVE_LONGDOUBLE:  # no 80-bit long double: the mpmath oracle (slow)
        from attnconf.reference import oracle
        return oracle.sdpa(pb.q, query_kv(pb.k, pb.group), query_kv(pb.v, pb.group),
                           attn_mask=attn_mask, is_causal=is_causal,
                           causal_alignment=causal_alignment, scale=scale, fully_masked=fully_masked)
    if exact:
        out, _, _ = forward_exact_ld(pb)
        return out.astype(np.float64)
    ar = Arith(precision)
    out, _, _ = forward_plain(pb, ar)
    return ar.output(out)


def query_kv(x: np.ndarray, group: int) -> np.ndarray:
    """Undo the GQA repeat of a Problem's k or v: (B, H, S, ·) -> (B, Hkv, S, ·)."""
    return x[:, ::group] if group > 1 else x


def natural_scale(pb: Problem) -> np.ndarray:
    """Natural scale of each output element: Σ_j p_ij |v_jc| (tol.metric).

    p from the float64 default path; a fully-masked row uses uniform p (the mean of |v|), so the
    scale is positive wherever V is not zero, whatever the policy.
    """
    out, p, full = forward_plain(dataclasses.replace(pb, fully_masked="uniform", padded=None), Arith(None))
    if pb.padded is not None or pb.sinks is not None:
        # padded query rows (sdpa.opt.query_lengths) and rows whose keys are all hidden but which
        # have a sink (sdpa.opt.sinks) are exactly 0: judged against the mean of |v|, as
        # fully-masked rows, so that garbage there counts
        hidden = ~pb.allowed.any(axis=-1, keepdims=True) if pb.allowed is not None else False
        empty = (pb.padded if pb.padded is not None else False) | hidden
        p = np.where(empty, 1.0 / p.shape[-1], p)
    return np.matmul(p, np.abs(pb.v))
