"""Worked examples of docs/plugins.md: a bare NumPy `sdpa_lse` (--sdpa-lse) and a bare merger of
attention states (--merge-states), written from spec/sdpa.md alone (no attnconf import).

    attnconf run --sdpa-lse example_lse:sdpa_lse --framework numpy
    attnconf run --merge-states example_lse:merge --framework numpy
"""
import numpy as np


def sdpa_lse(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False, sinks=None):
    """(output (B, H, L, Ev), lse (B, H, L)): natural log, −inf for a row with no key, float32 below float64."""
    wide = query.dtype == np.float64
    c = np.float64 if wide else np.float32
    q, k, v = (np.asarray(a).astype(c) for a in (query, key, value))
    g = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    s = q @ np.swapaxes(k, -1, -2) * c(1 / np.sqrt(q.shape[-1]) if scale is None else scale)
    if attn_mask is not None:
        m = np.asarray(attn_mask)
        s = np.where(m, s, -np.inf) if m.dtype == bool else s + m.astype(c)
    if is_causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    if sinks is not None:
        top = np.maximum(top, np.asarray(sinks).astype(c)[None, :, None, None])
    empty = np.isneginf(top)
    top = np.where(empty, 0, top)
    e = np.exp(s - top)
    z = e.sum(axis=-1, keepdims=True)
    if sinks is not None:
        z = z + np.exp(np.asarray(sinks).astype(c)[None, :, None, None] - top)
    out = np.where(empty, 0, e / np.where(empty, 1, z)) @ v
    with np.errstate(divide="ignore"):
        lse = np.where(empty, -np.inf, top + np.log(np.where(empty, 1, z)))[..., 0]
    return out.astype(query.dtype), lse.astype(c)


def merge(outputs, lses):
    """(output, lse) of N states: max subtracted, empty states weight 0, all empty -> (0, −inf)."""
    c = np.float64 if outputs.dtype == np.float64 else np.float32
    o, ls = np.asarray(outputs).astype(c), np.asarray(lses).astype(c)
    top = ls.max(axis=0)
    empty = np.isneginf(top)
    w = np.exp(ls - np.where(empty, 0, top))
    z = w.sum(axis=0)
    o = np.where(np.isneginf(ls)[..., None], 0, o)
    out = np.where(empty[..., None], 0, (w[..., None] * o).sum(axis=0) / np.where(empty, 1, z)[..., None])
    with np.errstate(divide="ignore"):
        lse = np.where(empty, -np.inf, np.where(empty, 0, top) + np.log(np.where(empty, 1, z)))
    return out.astype(outputs.dtype), lse.astype(c)
