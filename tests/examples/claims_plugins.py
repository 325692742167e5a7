"""Bare plug-in functions that each make one restricting claim (attnconf.adapters.declare) and
record every call they receive in CALLS, for tests/test_claims_gating.py: a plug-in making a
claim must never be called with a case outside it, by the golden cases, the invariants, the
profile, calibration or the pytest plugin alike. Each computes correctly under its own claim.
"""
import numpy as np

from attnconf.adapters import declare

import example_encoding
import example_numpy_sdpa
import example_rope

CALLS: list = []      # (function name, {argument: what was passed})


def _sdpa_call(name, query, key, value, attn_mask, is_causal, scale, enable_gqa):
    CALLS.append((name, {"dtype": str(query.dtype), "L": query.shape[-2], "S": key.shape[-2],
                         "mask": None if attn_mask is None else str(attn_mask.dtype), "is_causal": is_causal,
                         "scale": scale, "gqa": query.shape[-3] != key.shape[-3], "Ev": value.shape[-1],
                         "E": query.shape[-1]}))
    return example_numpy_sdpa.sdpa(query, key, value, attn_mask=attn_mask, is_causal=is_causal, scale=scale,
                                   enable_gqa=enable_gqa)


@declare(dtypes=("float64",), name="claims-dtypes")
def sdpa_float64_only(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    return _sdpa_call("sdpa_float64_only", query, key, value, attn_mask, is_causal, scale, enable_gqa)


@declare(mask_kinds=("bool",), name="claims-mask-kinds")
def sdpa_bool_masks(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    return _sdpa_call("sdpa_bool_masks", query, key, value, attn_mask, is_causal, scale, enable_gqa)


@declare(mask_and_causal=False, name="claims-mask-and-causal")
def sdpa_mask_or_causal(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    return _sdpa_call("sdpa_mask_or_causal", query, key, value, attn_mask, is_causal, scale, enable_gqa)


@declare(causal_alignment="bottom_right", name="claims-causal-alignment")
def sdpa_bottom_right(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """Causal rows aligned bottom-right (key j visible to query i when j <= i + S - L)."""
    CALLS.append(("sdpa_bottom_right", {"L": query.shape[-2], "S": key.shape[-2], "is_causal": is_causal}))
    if is_causal:
        L, S = query.shape[-2], key.shape[-2]
        visible = np.tril(np.ones((L, S), dtype=bool), k=S - L)
        attn_mask = visible if attn_mask is None else (
            attn_mask & visible if attn_mask.dtype == np.bool_ else np.where(visible, attn_mask, -np.inf))
    return example_numpy_sdpa.sdpa(query, key, value, attn_mask=attn_mask, scale=scale, enable_gqa=enable_gqa)


@declare(fully_masked="uniform", name="claims-fully-masked")
def sdpa_uniform_rows(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False):
    """A fully-masked row averages the values (the "uniform" alternative of sdpa.fully_masked)."""
    CALLS.append(("sdpa_uniform_rows", {"mask": None if attn_mask is None else str(attn_mask.dtype)}))
    if attn_mask is not None and attn_mask.dtype == np.bool_:
        empty = ~attn_mask.any(axis=-1, keepdims=True)
        attn_mask = attn_mask | empty            # every key visible: the mean of the values
    return example_numpy_sdpa.sdpa(query, key, value, attn_mask=attn_mask, is_causal=is_causal, scale=scale,
                                   enable_gqa=enable_gqa)


@declare(layout="concat", frequencies="t2t", name="claims-encoding")
def encoding_concat_t2t(num_positions, dim, *, base=10000.0, offset=0):
    CALLS.append(("encoding_concat_t2t", {"num_positions": num_positions, "dim": dim}))
    return example_encoding.concat_t2t(num_positions, dim, base=base, offset=offset)


@declare(rope_layout="interleaved", rope_scaling=("linear",), name="claims-rope")
def rope_linear_only(x, positions, *, base=10000.0, rotary_dim=None, scaling=None):
    CALLS.append(("rope_linear_only", {"rope_type": None if scaling is None else scaling.get("rope_type")}))
    return example_rope.rope(x, positions, base=base, rotary_dim=rotary_dim, scaling=scaling)
