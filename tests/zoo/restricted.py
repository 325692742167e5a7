"""Correct NumPy sdpa plug-ins (the reference) with the restrictions real kernels have: square
only (L = S: FlashAttention-style training kernels, windowed-attention libraries), no GQA, boolean
masks only, no float64. Each declines what it cannot do (NotImplementedError: a skip, never a
pass), so a run shows how many records such an implementation is still judged on, per clause
(tests/test_restricted_coverage.py)."""
from __future__ import annotations

import numpy as np

from attnconf import reference

_ARRAYS = ("sinks", "alibi_slopes", "query_offset", "key_lengths", "query_lengths")


def _reference(query, key, value, attn_mask, options):
    inputs = dict(query=query, key=key, value=value)
    if attn_mask is not None:
        inputs["attn_mask"] = attn_mask
    opts = {}
    for name, v in options.items():
        if v is None:
            continue
        (inputs if name in _ARRAYS else opts)[name] = v
    return reference.compute("sdpa", inputs, opts)["output"].astype(query.dtype)


def _restricted(*, square=False, gqa=True, float_mask=True, float64=True):
    def sdpa(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False,
             window=None, softcap=None, sinks=None, alibi_slopes=None, query_offset=None,
             key_lengths=None, query_lengths=None, chunk=None):
        if square and query.shape[-2] != key.shape[-2]:
            raise NotImplementedError(f"L = S only (got L={query.shape[-2]}, S={key.shape[-2]})")
        if not gqa and query.shape[1] != key.shape[1]:
            raise NotImplementedError("no grouped-query attention")
        if not float_mask and attn_mask is not None and np.asarray(attn_mask).dtype != np.bool_:
            raise NotImplementedError("boolean masks only")
        if not float64 and query.dtype == np.float64:
            raise NotImplementedError("no float64 kernel")
        return _reference(query, key, value, attn_mask, dict(
            is_causal=is_causal, scale=scale, enable_gqa=enable_gqa, window=None if window is None else tuple(window),
            softcap=softcap, sinks=sinks, alibi_slopes=alibi_slopes, query_offset=query_offset,
            key_lengths=key_lengths, query_lengths=query_lengths, chunk=chunk))
    return sdpa


sdpa_square_only = _restricted(square=True)
sdpa_no_gqa = _restricted(gqa=False)
sdpa_bool_masks_only = _restricted(float_mask=False)
sdpa_no_float64 = _restricted(float64=False)
sdpa_all_restrictions = _restricted(square=True, gqa=False, float_mask=False, float64=False)


def sdpa_square_mean_when_empty(query, key, value, *, attn_mask=None, is_causal=False, scale=None,
                                enable_gqa=False, window=None, softcap=None, sinks=None, alibi_slopes=None,
                                query_offset=None, key_lengths=None, query_lengths=None):
    """Square-only, and masks with a finite value as JAX and many windowed kernels do: a row whose
    window holds only padding keys gets the mean of the values instead of 0 (while it claims the
    canonical policy `zero`): the L = S window x key_lengths cases and inv.opt.padding_keys must
    fail it."""
    import importlib

    if query.shape[-2] != key.shape[-2]:
        raise NotImplementedError("L = S only")
    ref = importlib.import_module("attnconf.reference.sdpa")
    arrays = dict(sinks=sinks, alibi_slopes=alibi_slopes, query_offset=query_offset, key_lengths=key_lengths,
                  query_lengths=query_lengths)
    out = ref.sdpa(query, key, value, attn_mask=attn_mask, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa,
                   window=None if window is None else tuple(window), softcap=softcap, fully_masked="uniform",
                   **{k: v for k, v in arrays.items() if v is not None})
    return np.asarray(out).astype(query.dtype)
