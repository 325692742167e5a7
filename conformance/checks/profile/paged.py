"""Profile aspects of `sdpa_paged` (spec/paged.md): what an implementation gives for an empty
sequence (output and lse), which masking sentinel it uses (−∞, or a finite value real logits can
fall below), and where its sliding window is measured from (the cache positions p_i = K_b − L + i,
or the row index). Named by the sdpa_paged registry entry (`profile=`); run by the core.

Candidates are the reference (attnconf.reference.paged) with the alternative's arguments, or a
float64 NumPy evaluation of the alternative's formula on the probe's inputs.
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _declinable, _fmt, _named, _probe, match


def _inputs(seed, lengths, *, page=3, l=2, e=8, spread=1.0):
    rng = np.random.default_rng(seed)
    b = len(lengths)
    m = max(1, max(-(-n // page) for n in lengths))
    n_pages = b * m
    kp = np.round(rng.uniform(-spread, spread, (n_pages, page, 1, e)), 3)
    vp = np.round(rng.uniform(-1, 1, (n_pages, page, 1, e)) + 1.5, 3)
    table = rng.permutation(n_pages).reshape(b, m).astype(np.int64)
    q = np.round(rng.uniform(-spread, spread, (b, 1, l, e)), 3)
    return q, kp, vp, table, np.asarray(lengths, np.int64)


def _run(adapter, dtype, q, kp, vp, table, lengths, **opts):
    """(stacked [output[..., 0], lse] float64 | None, outcome) of one sdpa_paged call, with
    _probe's outcomes (unsupported, raised, declined)."""
    res = {}

    def call():
        out = adapter.sdpa_paged(*(adapter.from_numpy(a, dtype) for a in (q, kp, vp)),
                                 adapter.index_from_numpy(table), adapter.index_from_numpy(lengths), **opts)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"sdpa_paged should return (output, lse), but got {type(out).__name__}")
        res["lse"] = np.asarray(adapter.to_numpy(out[1]), np.float64)
        return out[0]

    out, how = _probe(adapter, call)
    if out is None:
        return None, how
    return np.stack([out[..., 0], res["lse"]]), how


def _ref(q, kp, vp, table, lengths, **opts):
    from attnconf.reference.paged import sdpa_paged

    out, lse = sdpa_paged(q, kp, vp, table, lengths, **opts)
    return np.stack([out[..., 0], lse])


def _result(out, how, cands, scale, what):
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": f"{what}: {how}"}
    value, dist = match(out, cands, scale)
    return {"value": value, "evidence": f"{what}: distance to {_fmt(dist)}"}


@_declinable
def _empty(adapter, dtype):
    q, kp, vp, table, lengths = _inputs(21, [0, 5])
    out, how = _run(adapter, dtype, q, kp, vp, table, lengths, is_causal=True)
    if out is None:
        return _result(out, how, {}, 1.0, "cache_lengths [0, 5]")
    ref = _ref(q, kp, vp, table, lengths, is_causal=True)
    row = out[:, 0]                                   # (2: output col 0 / lse, H, L) of the empty sequence
    if np.isnan(row).any():
        value = _named("paged_empty", "nan")
    elif np.isfinite(row[1]).any():
        value = _named("paged_empty", "finite")
    elif np.array_equal(row, ref[:, 0]):
        value = "zero_neg_inf"
    else:
        value = "other"
    return {"value": value, "evidence": f"cache_lengths [0, 5], causal: the empty sequence's output "
                                        f"{row[0].ravel().tolist()}, lse {row[1].ravel().tolist()}"}


@_declinable
def _sentinel(adapter, dtype):
    if dtype not in ("float64", "float32"):
        return {"value": "unsupported", "evidence": f"logits near −6·10⁴ need float32 or float64, not {dtype}"}
    q, kp, vp, table, lengths = _inputs(22, [6], page=4, l=3)
    q = np.full_like(q, 128.0)
    kp = -(56.0 + np.random.default_rng(3).integers(0, 5, kp.shape))
    out, how = _run(adapter, dtype, q, kp, vp, table, lengths, is_causal=True, scale=1.0)
    spec = _ref(q, kp, vp, table, lengths, is_causal=True, scale=1.0)
    cands = {"neg_inf": spec[:1], _named("paged_sentinel", "finite"): _finite_sentinel(q, kp, vp, table, lengths)}
    return _result(None if out is None else out[:1], how, cands, float(np.abs(vp).max()),
                   "causal, every real logit in [−61440, −57344]")


def _finite_sentinel(q, kp, vp, table, lengths):
    """The output with hidden keys at a finite −5·10⁴ (flashinfer #4267), float64."""
    from attnconf.reference.paged import contiguous

    k, v, _ = contiguous(q, kp, vp, table, lengths)
    s = np.einsum("bhle,bhse->bhls", q, k)
    l, n = q.shape[2], int(lengths[0])
    pos = n - l + np.arange(l)
    s = np.where(np.arange(k.shape[2])[None, :] <= pos[:, None], s, -5e4)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ v)[None, ..., 0]


@_declinable
def _window(adapter, dtype):
    if "window" not in adapter.capabilities.sdpa_options:
        return {"value": "unsupported", "evidence": "Capabilities.sdpa_options lacks window"}
    q, kp, vp, table, lengths = _inputs(23, [9, 7], l=2)
    out, how = _run(adapter, dtype, q, kp, vp, table, lengths, is_causal=True, window=(2, 0))
    cands = {"cache_positions": _ref(q, kp, vp, table, lengths, is_causal=True, window=(2, 0)),
             _named("paged_window", "top_left"): _row_index_window(q, kp, vp, table, lengths, 2)}
    return _result(out, how, cands, float(np.abs(vp).max()) + 10.0,
                   "causal, window (2, 0), cache_lengths [9, 7], L = 2")


def _row_index_window(q, kp, vp, table, lengths, left):
    """The causal rule and the window measured from the row index i (p_i = i), float64: the
    top_left alternative."""
    from attnconf.reference.paged import contiguous
    from attnconf.reference.lse import sdpa_lse

    k, v, lens = contiguous(q, kp, vp, table, lengths)
    out, lse = sdpa_lse(q, k, v, key_lengths=lens, is_causal=True, window=(left, 0))
    return np.stack([out[..., 0], lse])


_U = ("unsupported",)
ASPECTS = (
    Aspect("paged_empty", "sdpa_paged", _empty, "paged.empty", "zero_neg_inf", _U),
    Aspect("paged_sentinel", "sdpa_paged", _sentinel, "paged.sentinel", "neg_inf", _U),
    Aspect("paged_window", "sdpa_paged", _window, "paged.positions", "cache_positions", _U),
)
