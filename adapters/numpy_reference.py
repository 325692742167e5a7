"""`numpy-reference`: attnconf's own canonical NumPy implementation, run through the protocol.

float64 runs the reference's default path; float32/float16/bfloat16 run its same-precision
evaluation (`precision=<dtype>`), the baseline of the tolerance rule. It exists so the suite can be
checked against itself (calibration, false-failure rate). Must not import any framework.
"""
from __future__ import annotations

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, bundled_operations
from attnconf.dtypes import DTYPE_NAMES, dtype_name, numpy_dtype
from attnconf.operations.sdpa import OPTION_INPUTS, OPTION_NAMES as SDPA_OPTION_NAMES


def _precision(dtype: str) -> str | None:
    # float64 is the reference's default path (precision=None); lower dtypes are same-precision.
    return None if dtype == "float64" else dtype


def native_dtype(name: str):
    """The NumPy dtype for a dtype name (what a plug-in function's dtype= receives)."""
    return numpy_dtype(name)


class NumpyArrays:
    """Conversion for plain NumPy arrays (bfloat16 as ml_dtypes.bfloat16)."""

    framework = "numpy"
    modules = ("numpy",)

    def from_numpy(self, array, dtype):
        return np.asarray(array).astype(numpy_dtype(dtype))

    def to_numpy(self, value):
        # one contract for every return that is not a NumPy array (a list, a torch tensor): it is
        # not this framework's array, so the judge fails it by name ("output should be an array")
        if not isinstance(value, (np.ndarray, np.generic)):
            raise TypeError(f"a numpy implementation should return numpy arrays, but got {type(value).__name__}")
        return np.asarray(value)

    def from_numpy_bool(self, mask):
        return np.asarray(mask, dtype=bool)

    def index_from_numpy(self, arr):
        return np.asarray(arr).astype(np.int64)


class NumpyReferenceAdapter(NumpyArrays, Adapter):
    name = "numpy-reference"
    description = "attnconf's canonical NumPy reference (float64 default path; same-precision for lower dtypes)"
    capabilities = Capabilities(
        operations=bundled_operations(),
        dtypes=DTYPE_NAMES,
        causal_alignments=("top_left", "bottom_right"),
        gradients=True,
        encoding_layouts=("interleaved", "concat", "cos_first"),
        encoding_frequencies=("vaswani", "t2t"),
        mha_kv_heads=True,
        rope_layouts=("interleaved", "half"),
        sdpa_options=SDPA_OPTION_NAMES,
    )

    @classmethod
    def availability(cls):
        try:
            from attnconf import reference

            getattr(reference, "compute")
        except Exception as exc:  # reference not built or broken: say so, never raise
            return False, f"attnconf.reference.compute is not importable: {type(exc).__name__}: {exc}"
        return True, ""

    def _compute(self, operation, inputs, options, dtype):
        from attnconf.reference import compute

        inputs = {k: v for k, v in inputs.items() if v is not None}
        return compute(operation, inputs, options, precision=_precision(dtype))

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, **kernel_options):
        # kernel_options (sdpa.opt.*): window and softcap are options, the arrays inputs
        options = dict(is_causal=is_causal, causal_alignment=causal_alignment, scale=scale,
                       enable_gqa=enable_gqa)
        options.update({k: v for k, v in kernel_options.items() if k not in OPTION_INPUTS and v is not None})
        inputs = dict(query=query, key=key, value=value, attn_mask=attn_mask)
        inputs.update({k: v for k, v in kernel_options.items() if k in OPTION_INPUTS})
        return self._compute("sdpa", inputs, options, dtype_name(query.dtype))["output"]

    def sdpa_paged(self, query, key_pages, value_pages, block_table, cache_lengths, *, is_causal=False,
                   scale=None, enable_gqa=False, **kernel_options):
        options = dict(is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
        options.update({k: v for k, v in kernel_options.items() if k not in ("sinks", "alibi_slopes")})
        inputs = dict(query=query, key_pages=key_pages, value_pages=value_pages, block_table=block_table,
                      cache_lengths=cache_lengths)
        inputs.update({k: v for k, v in kernel_options.items() if k in ("sinks", "alibi_slopes")})
        out = self._compute("sdpa_paged", inputs, options, dtype_name(query.dtype))
        return out["output"], out["lse"]     # lse float32 below float64 (paged.dtype, as sdpa.lse.dtype)
    def sdpa_lse(self, query, key, value, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **kernel_options):
        options = dict(is_causal=is_causal, causal_alignment=causal_alignment, scale=scale,
                       enable_gqa=enable_gqa)
        options.update({k: v for k, v in kernel_options.items() if k not in OPTION_INPUTS and v is not None})
        inputs = dict(query=query, key=key, value=value, attn_mask=attn_mask)
        inputs.update({k: v for k, v in kernel_options.items() if k in OPTION_INPUTS})
        out = self._compute("sdpa_lse", inputs, options, dtype_name(query.dtype))
        return out["output"], out["lse"]

    def merge_attention_states(self, outputs, lses):
        out = self._compute("merge_attention_states", dict(outputs=outputs, lses=lses), {},
                            dtype_name(outputs.dtype))
        return out["output"], out["lse"]

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **kernel_options):
        options = dict(is_causal=is_causal, causal_alignment=causal_alignment, scale=scale,
                       enable_gqa=enable_gqa)
        options.update({k: v for k, v in kernel_options.items() if k not in OPTION_INPUTS and v is not None})
        inputs = dict(query=query, key=key, value=value, grad_output=grad_output, attn_mask=attn_mask)
        inputs.update({k: v for k, v in kernel_options.items() if k in OPTION_INPUTS})
        out = self._compute("sdpa_vjp", inputs, options, dtype_name(query.dtype))
        return tuple(out[n] for n in ("dq", "dk", "dv", "dsinks") if n in out)   # dsinks: with sinks (sdpa.opt.grad)

    varlen_options = ("window", "softcap", "sinks")
    batch_invariant = True    # each batch row of the reference is computed alone (reference/varlen.py)

    def sdpa_varlen(self, query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None,
                    *, sinks=None, **options):
        inputs = dict(query=query, key=key, value=value, cu_seqlens_q=cu_seqlens_q,
                      cu_seqlens_k=cu_seqlens_k, sinks=sinks)
        options.update(max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k)
        out = self._compute("sdpa_varlen", inputs, options, dtype_name(query.dtype))
        return out["output"], out["lse"]

    def multi_head_attention(self, query_input, key_value_input, weights, *, num_heads,
                             num_kv_heads=None, attn_mask=None, is_causal=False):
        inputs = dict(weights, query_input=query_input, key_value_input=key_value_input,
                      attn_mask=attn_mask)
        options = dict(num_heads=num_heads, num_kv_heads=num_kv_heads, is_causal=is_causal)
        return self._compute("multi_head_attention", inputs, options,
                             dtype_name(query_input.dtype))["output"]

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        options = dict(num_positions=num_positions, dim=dim, base=base, offset=offset,
                       layout=layout, frequencies=frequencies)
        out = self._compute("sinusoidal_encoding", {}, options, dtype)["output"]
        return np.asarray(out).astype(numpy_dtype(dtype))  # float64 path returns float64 already

    def rotary_embedding(self, x, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                         layout="interleaved"):
        options = dict(base=base, rotary_dim=rotary_dim, scaling=scaling, layout=layout)
        out = self._compute("rotary_embedding", dict(x=x, positions=positions), options,
                            dtype_name(x.dtype))["output"]
        return np.asarray(out).astype(x.dtype)  # float64 path returns float64 already

    def rope_cache(self, x, cos_cache, sin_cache, position_ids, *, rotary_dim=None, layout="half"):
        inputs = dict(x=x, cos_cache=cos_cache, sin_cache=sin_cache, position_ids=position_ids)
        out = self._compute("rope_cache", inputs, dict(rotary_dim=rotary_dim, layout=layout),
                            dtype_name(x.dtype))["output"]
        return np.asarray(out).astype(x.dtype)

    # -- position biases and learned positions: the reference, outputs in the case dtype --------
    def alibi_slopes(self, num_heads, *, max_bias=8.0, dtype="float32"):
        out = self._compute("alibi_slopes", {}, dict(num_heads=num_heads, max_bias=max_bias), dtype)
        return np.asarray(out["output"]).astype(numpy_dtype(dtype))

    def alibi_bias(self, num_heads, query_length, key_length, *, max_bias=8.0, mode="causal",
                   alignment="bottom_right", dtype="float32"):
        options = dict(num_heads=num_heads, query_length=query_length, key_length=key_length,
                       max_bias=max_bias, mode=mode, alignment=alignment)
        return np.asarray(self._compute("alibi_bias", {}, options, dtype)["output"]).astype(numpy_dtype(dtype))

    def relative_position_bucket(self, query_length, key_length, *, bidirectional=True, num_buckets=32,
                                 max_distance=128, query_offset=0):
        options = dict(query_length=query_length, key_length=key_length, bidirectional=bidirectional,
                       num_buckets=num_buckets, max_distance=max_distance, query_offset=query_offset)
        return self._compute("relative_position_bucket", {}, options, "float64")["output"]

    def relative_position_bias(self, table, query_length, key_length, *, bidirectional=True,
                               num_buckets=32, max_distance=128, query_offset=0):
        options = dict(query_length=query_length, key_length=key_length, bidirectional=bidirectional,
                       num_buckets=num_buckets, max_distance=max_distance, query_offset=query_offset)
        return self._compute("relative_position_bias", {"table": table}, options, dtype_name(table.dtype))["output"]

    def relative_position_index(self, query_length, key_length, *, max_relative_position,
                                alignment="top_left"):
        options = dict(query_length=query_length, key_length=key_length,
                       max_relative_position=max_relative_position, alignment=alignment)
        return self._compute("relative_position_index", {}, options, "float64")["output"]

    def position_ids(self, attention_mask, *, scheme, past_length=0, padding_idx=1):
        options = dict(scheme=scheme, past_length=past_length, padding_idx=padding_idx)
        return self._compute("position_ids", {"attention_mask": attention_mask}, options, "float64")["output"]

    def position_embedding(self, table, position_ids):
        inputs = {"table": table, "position_ids": position_ids}
        return self._compute("position_embedding", inputs, {}, dtype_name(table.dtype))["output"]
