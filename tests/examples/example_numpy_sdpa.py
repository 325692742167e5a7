"""A bare NumPy scaled dot-product attention, as a third party would write it (canonical layout).

Run it: attnconf run --sdpa example_numpy_sdpa:sdpa --framework numpy   (from this folder)
It declares nothing, so it claims the canonical spec (fully-masked rows give 0, top-left causal).
"""
import numpy as np

NOT_CALLABLE = 42  # used by the error-path tests


def sdpa(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """(B, H, L, E), (B, Hkv, S, E), (B, Hkv, S, Ev) -> (B, H, L, Ev), in the inputs' dtype."""
    dtype = query.dtype
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (query, key, value))
    H, Hkv = q.shape[1], k.shape[1]
    if H != Hkv:
        if not enable_gqa:
            raise ValueError(f"query heads {H} != key/value heads {Hkv} without enable_gqa")
        k, v = np.repeat(k, H // Hkv, axis=1), np.repeat(v, H // Hkv, axis=1)
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = np.einsum("bhle,bhse->bhls", q, k) * scale
    if attn_mask is not None:
        if attn_mask.dtype == np.bool_:
            logits = np.where(attn_mask, logits, -np.inf)
        else:
            logits = logits + np.asarray(attn_mask, dtype=np.float64)
    if is_causal:
        L, S = logits.shape[-2:]
        logits = np.where(np.tril(np.ones((L, S), dtype=bool)), logits, -np.inf)
    top = logits.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    weights = np.exp(logits - top)
    total = weights.sum(axis=-1, keepdims=True)
    weights = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)  # fully masked -> 0
    return np.einsum("bhls,bhsv->bhlv", weights, v).astype(dtype)
