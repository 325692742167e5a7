"""The one tolerance table of attnconf and the rule that reads it (spec/tolerance.md).

Errors are measured in ulps of each element's natural scale (clause tol.metric):

    err_ulp[i] = |actual[i] - exact[i]| / (scale[i] * eps[dtype])

The default level (tol.rule) compares an implementation with the *same-precision baseline*, the
reference algorithm run in the precision under test (tol.baseline):

    max_err <= max(k * baseline_err, floor_ulps)        k, floor_ulps from TABLE[operation, dtype]

For encodings the baseline is taken per position row, because the error of a correct table grows
with the position p (an angle p*w rounded in float32 errs by about p * 2^-24): row p is allowed k
times max(the worst baseline row error at positions <= p, the case's worst baseline error scaled
by (p + 1) / (p_max + 1)), so that a constant error at small p is not hidden by large-p rows.

The strict level (tol.levels) is a separate grade: max_err <= strict_ulps, i.e. close to the
exact value rounded to the output dtype, whatever the baseline does. Failing it never fails the
default level.

This module only holds numbers and arithmetic on error arrays. It must not compute reference
outputs (the engine does) nor import any framework. Tune the numbers here and nowhere else; the
calibration command measures their false-failure and detection rates. A plug-in's operation
(attnconf.operations) brings its own rows in its entry's `tolerance`; rule_for reads them only
where TABLE has none, so the bundled operations' rows stay in this one table.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from attnconf.dtypes import EPS

LEVELS = ("default", "strict")


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of the table: default level `max(k * baseline, floor_ulps)`, strict `strict_ulps`.

    baseline: "case" (one baseline error for the whole output) or "position" (encodings:
    per position row, see baseline_envelope).
    why: the measurement or argument behind the numbers (shown in spec/tolerance.md and reports).
    """

    k: float
    floor_ulps: float
    strict_ulps: float
    baseline: str
    why: str
    # The roundings a correct implementation must make in its *arguments*: each element may also
    # err by arg_ulps x the magnitude of its argument (max |logit| of the case for attention, the
    # angle p*w_0 = p of its row for encodings), in ulp of natural scale. See argument_floor().
    arg_ulps: float = 0.0


# --------------------------------------------------------------------------------------------
# THE TABLE.  Keyed by (operation, dtype).  Every entry says why; the measurements are reproduced
# by `python -m attnconf.conformance.tolerance_evidence` (see spec/tolerance.md).
# --------------------------------------------------------------------------------------------
_EVIDENCE = "python -m attnconf.conformance.tolerance_evidence"

_ARG_WHY = (" arg_ulps: a correct kernel may round each logit s (pre-scaling q and k by sqrt(scale), "
            "as torch math does, costs ~2|s|u); the output then moves by <= 2*max|s|*u*scale, "
            "i.e. arg_ulps*max|s| ulp of natural scale. Golden-style inputs make the naive float64 "
            "logits exact, so the baseline alone cannot see this: calibration measured torch-math "
            "at 200 ulp for a baseline of 1 ulp (logits ~50); a 1e-5 scale error still exceeds it "
            "by ~1e10 at float64, ~20 at float32.")
_ATTN_WHY = ("k=32: torch-math (q and k each pre-scaled by sqrt(scale)) measured up to 9.9x the "
             "naive same-precision error at float64 and 13.9x at float32 (2 x 60 random cases, "
             "logits up to ~40; golden sdpa/logits_1e4_causal_tl: 4.6x); torch-flash <= 3.5x; "
             "k is twice the worst ratio seen. "
             "PyTorch's own tests allow 5x its math backend, FlashAttention 2x the naive one. "
             "Floor 16: the baseline is sometimes nearly exact while a correct kernel is a few "
             "ulps off; a 1e-5 relative scale error still costs >1e7 ulp at float64." + _ARG_WHY)
_LOW_WHY = ("float16/bfloat16: the baseline rounds logits and P to the dtype (FlashAttention "
            "style) and errs up to ~34 ulp; kernels that upcast (torch math/flash, jax) measured "
            "<= 0.8 ulp; keras-tf keeps the whole softmax in float16 and measured 5.7x the "
            "baseline on golden sdpa/logits_1e4_causal_tl. k=8, floor 4 (output rounding alone "
            "is 0.5 ulp).")
_GRAD_WHY = ("gradients chain two matmuls and the softmax Jacobian: torch autograd measured up to "
             "23.6x the naive error (float64) and 52x (float32, where the baseline was ~1 ulp), "
             "errors <= 66 ulp; PyTorch's tests allow a fudge up to 180. k=64, floor 128. "
             "The kernel options' gradients (sdpa.opt.grad) keep the row: on the 10 golden and 60 random "
             "option cases torch-math/torch-default (decode) and torch-math-masks (window, ALiBi, offsets, lengths "
             "as its attn_mask) measured <= 0.061 of the tolerance (<= 7.9 ulp), "
             "jax-xla float32 (window, lengths) passes all but the documented fully-masked case, the NumPy "
             "zoo control <= 0.016; dsinks of the wrong sign, a soft-cap without its slope and a window "
             "leaking into hidden keys err by >= 6.7e4 times it.")
_GRAD_LOW_WHY = ("float16/bfloat16 gradients: torch measured <= 2.1 ulp against a baseline up to "
                 "48 ulp; k=8, floor 8.")
_MHA_WHY = ("multi-head layer: projections around sdpa; torch.nn.MultiheadAttention measured "
            "<= 3.2x the naive error, <= 0.8 ulp. k=8, floor 16 leaves room for fused "
            "in-projection orders; weight-layout bugs are O(1).")
_ENC_WHY = ("float32 encodings, per-position baseline: tables that compute p*w in float32 "
            "(PyTorch tutorial exp(-log) form, keras-hub pow form) measured <= 0.5x of "
            "max(4 x envelope, 2) at offsets 0..1e6; a running max alone failed them by 39x at "
            "offset 1e6, a per-case max missed a 3e-5 phase error by 20x at 2048 positions.")
_ENC64_WHY = ("float64 encodings: the baseline is accurate (double-double angles), but a correct "
              "table may round its angle p*w (and w): arg_ulps=2 allows 2*p ulp at position p "
              "(naive float64 tables measured <= 1.5*p); floor 4 ulp for libm sin/cos. float32 "
              "angles claimed as float64 still err by ~2^28*p ulp.")
_ENC_LOW_WHY = ("float16/bfloat16 tables: computed in float32 and rounded once (spec), so the "
                "error is the output rounding, <= 0.5 ulp, plus the float32 angle's rounding: "
                "arg_ulps is two float32 roundings of the angle p in the dtype's ulps (2*2^-24/eps: "
                "2^-13 float16, 2^-16 bfloat16; calibration: float32-angle tables 2.96x over "
                "without it at p ~ 1e5); angles computed in the low dtype (p*2^-11) stay caught.")

_ROPE64_WHY = ("float64 RoPE, per-position baseline (the accurate double-double path) plus the angle "
               "per channel: a naive float64 kernel (omega by pow, times the scaling ratio, p*omega, "
               "times m) measured up to 1.05x of max(4 x envelope, 4, 2 x theta) on 132 golden and "
               "random cases (rope/yarn_untruncated), so arg_ulps=4 (ratio <= 0.52); floor 4 for "
               "libm sin/cos and the two products. Float32 angles claimed as float64 (HF's inv_freq "
               "is always float32) err by ~2^29*theta ulp.")
_ROPE_WHY = ("float32 RoPE, per-position baseline (float32 omega and theta = p*omega: ~theta ulp off "
             "at position p, legitimately 1e6 ulp at p = 1e6) plus arg_ulps=4 per radian of the "
             "channel's own angle: an HF-style kernel rounds omega twice (pow, reciprocal), the "
             "scaling ratio once and p*omega once; measured <= 0.29 of the tolerance on 132 golden "
             "and random cases. Positions in bfloat16, cos/sin in bfloat16, "
             "off-by-one or lost offsets err by ~2^14*theta ulp or O(2^23) and stay caught.")
_ROPE_LOW_WHY = ("float16/bfloat16 RoPE: float32 angles, cos and sin rounded to the dtype (HF), "
                 "the rotation rounded per operation in the dtype by HF: measured 0.6 of "
                 "max(2 x envelope, 2) on 132 golden and random cases (the floor region), so floor 3 "
                 "(then <= 0.57, at long positions); arg_ulps: four float32 roundings of the angle in the dtype's ulps "
                 "(4*2^-24/eps: 2^-12 float16, 2^-15 bfloat16).")

_ALIBI_WHY = ("ALiBi slopes and biases, in ulps of each element's own magnitude |m|·max(|d|, 1): the "
              "baseline (exp2 of the exponent, one product) errs <= 0.4 ulp (0 at float64), so the floor "
              "decides; arg_ulps 0.5 per power k of the slope: a kernel forming m_k = base^k (the paper's "
              "get_slopes start·ratio**i, HF BLOOM's torch.pow(base, k)) rounds the base once (0.5 ulp) "
              "and carries it k times. Measured for n = 1 … 256 heads: the paper's float64 code up to 28.7 "
              "ulp (n = 120), 0.48 of the tolerance; BLOOM's float32 torch.pow up to 5.7 ulp, 0.14 of it; "
              "through the adapters on 60 random cases per family: hf-bloom-alibi <= 0.35 (slopes) and "
              "<= 0.47 (bias) of it at float32, keras-hub-alibi <= 0.13 (slopes), every dtype <= 0.47. "
              "A wrong slope rule errs by >= 19 % (2^(1/4) − 1 at the first odd head).")
_ALIBI_LOW_WHY = ("float16/bfloat16 ALiBi: slopes and products in float32, rounded once (BLOOM's "
                  ".to(dtype)): <= 0.5 ulp; k=2, floor 1; arg_ulps: the float32 base's 0.5-ulp rounding "
                  "carried k times, in the dtype's ulps (2^-24/eps: 2^-14 float16, 2^-17 bfloat16).")
_ROPE_CACHE_WHY = ("RoPE from given caches: no angle to form, two products and a sum per element, judged "
                   "in ulps of |u·c| + |w·s|: the baseline (products and sum in the dtype, float32 for "
                   "half types, rounded once) errs <= 0.5 ulp; a kernel rounding each product and the sum in a "
                   "half dtype (HF's q*cos + rotate_half(q)*sin) up to 1.5 ulp. k=4, floor 4. Measured on 9 golden "
                   "and 60 random cases: onnxruntime RotaryEmbedding (ONNX-23 and com.microsoft) <= 0.50 ulp "
                   "(0.12 of the tolerance), HF apply_rotary_pos_emb <= 0.91 ulp (0.23); a cache read by row errs "
                   ">= 13x the tolerance (bfloat16), a pairing swap up to 4e3x (the two agree only at r = 2).")
_EXACT_WHY = ("an exact result (integer buckets, indices and position ids, at their fixed int64; table "
              "lookups at every float dtype, whose golden tables are exact in it): k=0, floor 0, so the "
              "tolerance is 0 and any difference fails — there is no rounding for a correct "
              "implementation to make (spec relpos.bias, posids.lookup).")

_VARLEN_WHY = (" sdpa_varlen: sdpa's row, each packed sequence being one sdpa problem; its LSE "
               "output is judged in ulps of sdpa_lse's natural scale 1 + Σ p_ij|s_ij| of the row "
               "(measured with the golden cases and the calibration families varlen-*).")
_LSE_WHY = ("sdpa_lse: the output under sdpa's rows (k=32, floor 16, arg 4) and the LSE in ulps of its natural "
            "scale 1 + Σ p_ij|s_ij| (a logit's rounding moves the LSE by p_ij|s_ij|u; the 1 is log z's own "
            "rounding), the same arg term (pre-scaled q and k move each logit by ~2|s|u). Measured on 2 x 60 "
            "random cases of the lse families: torch-flash-lse (PyTorch's CPU flash op) <= 2.24 ulp, <= 3x the "
            "naive baseline, <= 0.094 of the tolerance; torch-flex <= 5.5 ulp, <= 3.6x, <= 0.083. A base-2 "
            "or an unscaled LSE is off by O(1), >= 1e6 ulp at float32.")
_LSE_LOW_WHY = ("sdpa_lse at float16/bfloat16: the output under sdpa's low rows (k=8, floor 4, arg 2); the LSE is "
                "float32 (sdpa.lse.dtype) and judged in the dtype's ulps against the baseline whose logits are "
                "rounded to the dtype (its error up to ~4.6 ulp). Measured: torch-flash-lse <= 0.64 ulp (<= 0.12 "
                "of the tolerance), torch-flex <= 4.6 ulp on the output (0.82 of it, sdpa's own margin), the "
                "LSEs well inside.")
_MERGE_WHY = ("merge_attention_states: output in ulps of Σ ŵ_n|o_n|, LSE in ulps of 1 + Σ ŵ_n|lse_n| (ŵ the "
              "normalised weights); arg 4 per unit of N x max|lse_n|: a merger carrying a running LSE two states "
              "at a time (ring attention's _SDPAMerger) rounds it at each step and a weight exp(lse_n − lse) "
              "moves by ~|lse|u each time. Measured on 2 x 60 random cases: torch-cp-merge up to 156 ulp at "
              "LSEs near 800 (float64 and float32), <= 0.23 of the tolerance; the max-subtracted baseline <= 1.7 "
              "ulp. Without the arg term that correct merger fails by 20x; a merge without the maximum gives "
              "inf/NaN, an unnormalised one O(1) errors.")
_MERGE_LOW_WHY = ("merge_attention_states at float16/bfloat16: weights and sums in float32, the output rounded "
                  "once to the dtype: baseline <= 0.48 ulp; torch-cp-merge (convert_to_f32) the same, <= 0.24 of "
                  "the tolerance; arg: four float32 roundings of the running LSE in the dtype's ulps "
                  "(4·2⁻²⁴/eps: 2⁻¹² float16, 2⁻¹⁵ bfloat16).")

TABLE: dict[tuple[str, str], Rule] = {
    ("sdpa", "float64"): Rule(32.0, 16.0, 4.0, "case", _ATTN_WHY, arg_ulps=4.0),
    ("sdpa", "float32"): Rule(32.0, 16.0, 4.0, "case", _ATTN_WHY, arg_ulps=4.0),
    ("sdpa", "float16"): Rule(8.0, 4.0, 2.0, "case", _LOW_WHY, arg_ulps=2.0),
    ("sdpa", "bfloat16"): Rule(8.0, 4.0, 2.0, "case", _LOW_WHY, arg_ulps=2.0),
    # sdpa_paged: the sdpa rows (the gathered problem is an sdpa; its lse shares the rule, in ulps
    # of its own natural scale max(1, |lse|, max|s|), spec paged.lse)
    **{("sdpa_paged", dt): TABLE_SDPA for dt, TABLE_SDPA in (
        ("float64", Rule(32.0, 16.0, 4.0, "case", _ATTN_WHY, arg_ulps=4.0)),
        ("float32", Rule(32.0, 16.0, 4.0, "case", _ATTN_WHY, arg_ulps=4.0)),
        ("float16", Rule(8.0, 4.0, 2.0, "case", _LOW_WHY, arg_ulps=2.0)),
        ("bfloat16", Rule(8.0, 4.0, 2.0, "case", _LOW_WHY, arg_ulps=2.0)))},
    ("sdpa_vjp", "float64"): Rule(64.0, 128.0, 16.0, "case", _GRAD_WHY, arg_ulps=8.0),
    ("sdpa_vjp", "float32"): Rule(64.0, 128.0, 16.0, "case", _GRAD_WHY, arg_ulps=8.0),
    ("sdpa_vjp", "float16"): Rule(8.0, 8.0, 4.0, "case", _GRAD_LOW_WHY, arg_ulps=4.0),
    ("sdpa_vjp", "bfloat16"): Rule(8.0, 8.0, 4.0, "case", _GRAD_LOW_WHY, arg_ulps=4.0),
    ("multi_head_attention", "float64"): Rule(8.0, 16.0, 8.0, "case", _MHA_WHY),
    ("multi_head_attention", "float32"): Rule(8.0, 16.0, 8.0, "case", _MHA_WHY),
    ("multi_head_attention", "float16"): Rule(4.0, 4.0, 2.0, "case", _MHA_WHY),
    ("multi_head_attention", "bfloat16"): Rule(4.0, 4.0, 2.0, "case", _MHA_WHY),
    ("sinusoidal_encoding", "float64"): Rule(4.0, 4.0, 1.0, "position", _ENC64_WHY, arg_ulps=2.0),
    ("sinusoidal_encoding", "float32"): Rule(4.0, 2.0, 1.0, "position", _ENC_WHY, arg_ulps=2.0),
    ("sinusoidal_encoding", "float16"): Rule(2.0, 1.0, 1.0, "position", _ENC_LOW_WHY, arg_ulps=2.0 ** -13),
    ("sinusoidal_encoding", "bfloat16"): Rule(2.0, 1.0, 1.0, "position", _ENC_LOW_WHY, arg_ulps=2.0 ** -16),
    ("rotary_embedding", "float64"): Rule(4.0, 4.0, 1.0, "position", _ROPE64_WHY, arg_ulps=4.0),
    ("rotary_embedding", "float32"): Rule(4.0, 2.0, 1.0, "position", _ROPE_WHY, arg_ulps=4.0),
    ("rotary_embedding", "float16"): Rule(2.0, 3.0, 1.0, "position", _ROPE_LOW_WHY, arg_ulps=2.0 ** -12),
    ("rotary_embedding", "bfloat16"): Rule(2.0, 3.0, 1.0, "position", _ROPE_LOW_WHY, arg_ulps=2.0 ** -15),
    **{("rope_cache", dt): Rule(4.0, 4.0, 1.0, "case", _ROPE_CACHE_WHY) for dt in ("float64", "float32", "float16", "bfloat16")},
    **{(op, "float64"): Rule(4.0, 4.0, 1.0, "case", _ALIBI_WHY, arg_ulps=0.5) for op in ("alibi_slopes", "alibi_bias")},
    **{(op, "float32"): Rule(4.0, 2.0, 1.0, "case", _ALIBI_WHY, arg_ulps=0.5) for op in ("alibi_slopes", "alibi_bias")},
    **{(op, "float16"): Rule(2.0, 1.0, 1.0, "case", _ALIBI_LOW_WHY, arg_ulps=2.0 ** -14)
       for op in ("alibi_slopes", "alibi_bias")},
    **{(op, "bfloat16"): Rule(2.0, 1.0, 1.0, "case", _ALIBI_LOW_WHY, arg_ulps=2.0 ** -17)
       for op in ("alibi_slopes", "alibi_bias")},
    **{(op, dt): Rule(0.0, 0.0, 0.0, "case", _EXACT_WHY) for op in ("relative_position_bias", "position_embedding")
       for dt in ("float64", "float32", "float16", "bfloat16")},
    ("sdpa_lse", "float64"): Rule(32.0, 16.0, 4.0, "case", _LSE_WHY, arg_ulps=4.0),
    ("sdpa_lse", "float32"): Rule(32.0, 16.0, 4.0, "case", _LSE_WHY, arg_ulps=4.0),
    ("sdpa_lse", "float16"): Rule(8.0, 4.0, 2.0, "case", _LSE_LOW_WHY, arg_ulps=2.0),
    ("sdpa_lse", "bfloat16"): Rule(8.0, 4.0, 2.0, "case", _LSE_LOW_WHY, arg_ulps=2.0),
    ("merge_attention_states", "float64"): Rule(8.0, 8.0, 2.0, "case", _MERGE_WHY, arg_ulps=4.0),
    ("merge_attention_states", "float32"): Rule(8.0, 8.0, 2.0, "case", _MERGE_WHY, arg_ulps=4.0),
    ("merge_attention_states", "float16"): Rule(4.0, 2.0, 1.0, "case", _MERGE_LOW_WHY, arg_ulps=2.0 ** -12),
    ("merge_attention_states", "bfloat16"): Rule(4.0, 2.0, 1.0, "case", _MERGE_LOW_WHY, arg_ulps=2.0 ** -15),
    **{(op, "int64"): Rule(0.0, 0.0, 0.0, "case", _EXACT_WHY)
       for op in ("relative_position_bucket", "relative_position_index", "position_ids")},
    # sdpa_varlen: each sequence is an sdpa problem (varlen.sequence), so sdpa's rows; the LSE is
    # judged in ulps of sdpa_lse's natural scale 1 + Σ p|s| (tol.metric)
    **{("sdpa_varlen", dt): Rule(32.0, 16.0, 4.0, "case", _ATTN_WHY + _VARLEN_WHY, arg_ulps=4.0)
       for dt in ("float64", "float32")},
    **{("sdpa_varlen", dt): Rule(8.0, 4.0, 2.0, "case", _LOW_WHY + _VARLEN_WHY, arg_ulps=2.0)
       for dt in ("float16", "bfloat16")},
}


def rule_for(operation: str, dtype: str) -> Rule:
    """The row judging `operation` at `dtype`. TABLE stays the one table: it holds every bundled
    operation's rows, and a registered operation's own `tolerance` rows (attnconf.operations,
    {dtype: Rule}: a plug-in's operation) are read only where TABLE has none."""
    rule = TABLE.get((operation, dtype))
    if rule is not None:
        return rule
    from attnconf import operations

    own = {op.name: op.tolerance for op in operations.operations() if op.tolerance}
    rule = own.get(operation, {}).get(dtype)
    if rule is not None:
        return rule
    from attnconf.validation import fail

    known = sorted({op for op, _ in TABLE} | set(own))
    fail("(operation, dtype)", f"an operation in {known} with a dtype in {sorted(EPS)}",
         repr((operation, dtype)), KeyError)


# Smallest positive normal per dtype: guards a zero natural scale (an all-zero value row), so
# that an exact 0 stays 0 ulp and anything visibly nonzero is a large error.
_TINY = {"float64": 2.0 ** -1022, "float32": 2.0 ** -126, "float16": 2.0 ** -14, "bfloat16": 2.0 ** -126,
         "int64": 1.0}


def ulp_errors(actual: np.ndarray, exact: np.ndarray, scale: np.ndarray, dtype: str) -> np.ndarray:
    """Elementwise |actual - exact| / (scale * eps[dtype]) in float64 (tol.metric).

    Non-finite values: where `exact` is finite and `actual` is not, the error is +inf; where
    `exact` is non-finite, the error is 0 if `actual` is the same non-finite value, else +inf.
    """
    a = np.asarray(actual).astype(np.float64)
    x = np.asarray(exact, dtype=np.float64)
    s = np.maximum(np.abs(np.asarray(scale, dtype=np.float64)), _TINY[dtype])
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - x) / (s * EPS[dtype])
    finite_x = np.isfinite(x)
    bad = finite_x & ~np.isfinite(a)
    same_nonfinite = ~finite_x & ((np.isnan(x) & np.isnan(a)) | (x == a))
    err = np.where(bad | (~finite_x & ~same_nonfinite), np.inf, err)
    return np.where(same_nonfinite, 0.0, err)


def row_axis(operation: str, ndim: int) -> int | None:
    """The position axis of a "position"-baseline rule's output (rows are positions: the
    next-to-last axis), else None. `operation` is kept for callers; the rule's `baseline` decides."""
    return ndim - 2 if ndim >= 2 else None


def baseline_envelope(rule: Rule, baseline_err: np.ndarray, operation: str,
                      positions: np.ndarray | None = None) -> np.ndarray:
    """The baseline error each element is judged against, broadcastable to the output.

    "case": the max over the whole output (a 0-d array).
    "position": per position row p, max(running max of the baseline's row errors up to p,
    case max * (p + 1) / (p_max + 1)). The error of a correct table grows linearly with p (the
    angle p*w carries a rounding error of about p*w*u), so early rows get a proportionally tighter
    tolerance; a row's own baseline error alone is a random draw below that line, too noisy to
    judge by (measured: a running max alone fails keras-hub-style float32 tables at offset 1e6 by
    39x, the linear line never above 0.5x of the tolerance).
    """
    b = np.asarray(baseline_err, dtype=np.float64)
    b = np.where(np.isfinite(b), b, 0.0)  # a non-finite baseline element never widens tolerance
    axis = row_axis(operation, b.ndim) if rule.baseline == "position" else None
    if axis is None or b.size == 0:
        return np.asarray(b.max() if b.size else 0.0)
    rows = b.shape[axis]
    p = np.arange(rows, dtype=np.float64) if positions is None else np.asarray(positions, np.float64)
    other = tuple(i for i in range(b.ndim) if i != axis)
    per_row = b.max(axis=other) if other else b
    line = per_row.max() * (p + 1.0) / (p.max() + 1.0)
    env = np.maximum(np.maximum.accumulate(per_row), line)
    shape = [1] * b.ndim
    shape[axis] = rows
    return env.reshape(shape)


def tolerance_ulps(rule: Rule, envelope: np.ndarray) -> np.ndarray:
    """max(k * baseline, floor) elementwise over the envelope (tol.rule)."""
    return np.maximum(rule.k * np.asarray(envelope, dtype=np.float64), rule.floor_ulps)


def argument_floor(rule: Rule, arg_scale) -> np.ndarray:
    """arg_ulps x argument magnitude (0 when the rule has no argument term or none is known)."""
    if not rule.arg_ulps or arg_scale is None:
        return np.asarray(0.0)
    return rule.arg_ulps * np.abs(np.asarray(arg_scale, dtype=np.float64))


def describe(rule: Rule, operation: str, dtype: str, baseline: float, tol: float,
             arg: float | None = None) -> str:
    """One line naming the rule and the numbers that produced a tolerance."""
    where = "position-scaled baseline" if rule.baseline == "position" else "baseline"
    term = ""
    if rule.arg_ulps and arg is not None:
        what = ("angle" if rule.baseline == "position" else "N x max |lse|" if operation == "merge_attention_states"
                else "max |logit|")   # positions: the angle p
        term = f", {rule.arg_ulps:g} x {what} {arg:.3g}"
    return (f"default: max({rule.k:g} x {where} {baseline:.3g}, floor {rule.floor_ulps:g}{term}) = "
            f"{tol:.3g} ulp [TABLE[{operation}, {dtype}]]")
