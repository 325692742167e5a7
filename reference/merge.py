"""Merging attention states (spec/sdpa.md, clauses sdpa.merge.*): the reference of split-KV,
cascade and ring / context-parallel combination.

For what: the state (output, lse) of the union of N blocks of keys from each block's state, in
the three flavours of the attention reference:
  * default (precision=None): float64, the stable algorithm below;
  * exact=True: golden grade: weights, sums and the log in 80-bit long double, rounded once;
  * precision="float32" | "float16" | "bfloat16": the same-precision baseline (tol.baseline,
    sdpa.merge.dtype): outputs as the dtype holds them, LSEs as float32 (how kernels keep them),
    weights and sums in float32, the output rounded once to the dtype, the LSE float32.
Must not import any framework.

Math (per b, h, i; n = 1 … N):

    M = maxₙ lse_n                     (−∞ when every state is empty)
    w_n = exp(lse_n − M)               (0 for an empty state, whatever its output: sdpa.merge.empty)
    output = Σₙ w_n · output_n / Σₙ w_n,   lse = M + log Σₙ w_n
    every state empty: output = 0, lse = −∞

Shapes: outputs (N, B, H, L, Ev), lses (N, B, H, L) -> output (B, H, L, Ev), lse (B, H, L).
"""
from __future__ import annotations

import numpy as np

from attnconf.reference import precise
from attnconf.reference.rounding import to_dtype
from attnconf.reference.sdpa import PRECISIONS, Arith
from attnconf.validation import check_array, check_choice, fail


def check_states(outputs, lses):
    """The one validation of merge_attention_states' arguments: (outputs, lses) as arrays."""
    o = check_array("outputs", outputs, ndim=5, legend="(N, B, H, L, Ev)")
    s = check_array("lses", lses, ndim=4, legend="(N, B, H, L)")
    if s.shape != o.shape[:4]:
        fail("lses shape (N, B, H, L)", str(tuple(o.shape[:4])) + " (the outputs' first four)", str(s.shape))
    if min(o.shape) < 1:
        fail("N, B, H, L and Ev", ">= 1", f"outputs shape {o.shape}")
    s64 = s.astype(np.float64)
    if np.isnan(s64).any() or np.isposinf(s64).any():
        fail("lses", "finite or −inf (an empty state)", "NaN or +inf entries")
    return o, s


def merge_attention_states(outputs, lses, *, precision=None, exact=False):
    """The merged state of N attention states (sdpa.merge.definition).

    output = Σₙ exp(lse_n − M)·output_n / Σₙ exp(lse_n − M),  lse = M + log Σₙ exp(lse_n − M).
    outputs (N, B, H, L, Ev), lses (N, B, H, L) -> (output (B, H, L, Ev), lse (B, H, L)).
    Dtypes: float64 for precision None/"float64" and exact=True; else output in the named dtype
    and lse float32 (sdpa.merge.dtype).
    """
    check_choice("precision", precision, PRECISIONS)
    if not isinstance(exact, (bool, np.bool_)):
        fail("exact", "a bool", repr(exact), TypeError)
    if exact and precision not in (None, "float64"):
        fail("precision", "None or 'float64' when exact=True", repr(precision))
    o, s = check_states(outputs, lses)
    if exact:
        return _merge_exact(o.astype(np.float64), s.astype(np.float64))
    return _merge_plain(o, s, Arith(precision))


def _merge_plain(o, s, ar: Arith):
    c = ar.compute
    o = ar.input(o)
    s = to_dtype(s.astype(np.float64), "float64" if c == np.float64 else "float32").astype(c)
    m = np.max(s, axis=0)                               # (B, H, L)
    empty = np.isneginf(m)                              # sdpa.merge.empty: every state empty
    shift = np.where(empty, c.type(0), m)
    w = np.exp(s - shift)                               # 0 for an empty state
    z = np.sum(w, axis=0)
    o = np.where(np.isneginf(s)[..., None], c.type(0), o)   # an empty state's output never counts
    num = np.sum(w[..., None] * o, axis=0)
    out = np.where(empty[..., None], c.type(0), num / np.where(empty, c.type(1), z)[..., None])
    with np.errstate(divide="ignore"):
        lse = np.where(empty, c.type(-np.inf), shift + np.log(np.where(empty, c.type(1), z)))
    return ar.output(out), lse.astype(c)


def _merge_exact(o, s):
    if not precise.HAVE_LONGDOUBLE:
        return _merge_mpmath(o, s)
    ld = np.longdouble
    m = np.max(s, axis=0)
    empty = np.isneginf(m)
    shift = np.where(empty, 0.0, m)
    with np.errstate(invalid="ignore"):
        w = np.exp(s.astype(ld) - shift.astype(ld))     # lse − M exact in long double (64 bits)
    w = np.where(np.isneginf(s), ld(0), w)
    z = np.sum(w, axis=0)
    o = np.where(np.isneginf(s)[..., None], 0.0, o)
    num = np.sum(w[..., None] * o.astype(ld), axis=0)
    out = np.where(empty[..., None], ld(0), num / np.where(empty, ld(1), z)[..., None])
    with np.errstate(divide="ignore"):
        lse = np.where(empty, ld(-np.inf), shift.astype(ld) + np.log(np.where(empty, ld(1), z)))
    return out.astype(np.float64), lse.astype(np.float64)


def _merge_mpmath(o, s):
    """The exact merge row by row in mpmath (platforms without an 80-bit long double; slow)."""
    import mpmath

    out = np.zeros(o.shape[1:], np.float64)
    lse = np.full(s.shape[1:], -np.inf)
    with mpmath.workprec(120):
        for idx in np.ndindex(*s.shape[1:]):
            live = [n for n in range(s.shape[0]) if np.isfinite(s[(n,) + idx])]
            if not live:
                continue
            w = [mpmath.exp(mpmath.mpf(float(s[(n,) + idx]))) for n in live]
            z = mpmath.fsum(w)
            lse[idx] = float(mpmath.log(z))
            for e in range(o.shape[-1]):
                out[idx + (e,)] = float(mpmath.fsum(wn * mpmath.mpf(float(o[(n,) + idx + (e,)]))
                                                    for wn, n in zip(w, live)) / z)
    return out, lse


def natural_scales(outputs, lses) -> tuple[np.ndarray, np.ndarray]:
    """(scale of output, scale of lse) (tol.metric): Σₙ ŵ_n·|output_n| per element (ŵ the
    normalised weights; the mean of |output_n| over the states of an all-empty row) and
    1 + Σₙ ŵ_n·|lse_n| per row (1: the log's own rounding; 1 for an all-empty row)."""
    o, s = check_states(outputs, lses)
    o, s = o.astype(np.float64), s.astype(np.float64)
    m = np.max(s, axis=0)
    empty = np.isneginf(m)
    w = np.where(np.isneginf(s), 0.0, np.exp(s - np.where(empty, 0.0, m)))
    w = np.where(empty, 1.0, w)                          # all-empty: the mean, so garbage counts
    w = w / w.sum(axis=0)
    absolute = np.where(np.isfinite(o), np.abs(o), 0.0)
    out_scale = np.sum(w[..., None] * absolute, axis=0)
    lse_scale = 1.0 + np.sum(w * np.where(np.isfinite(s), np.abs(s), 0.0), axis=0)
    return out_scale, lse_scale
