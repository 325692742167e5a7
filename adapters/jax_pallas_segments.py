"""`jax-pallas-segments`: JAX's Pallas flash-attention kernel for GPUs
(`jax.experimental.pallas.ops.gpu.attention.mha`) with `segment_ids`, its packed-sequence form,
run in Pallas interpret mode on the CPU, judged as `sdpa_varlen` (spec/varlen.md).

What was tried: this kernel runs in interpret mode here (a few seconds per new shape, the kernel's
own blocking, online softmax in exp2 and masking are executed as written); the TPU ragged paged
attention kernel (`pallas.ops.tpu.ragged_paged_attention`) does not: under
`pltpu.force_tpu_interpret_mode()` it raises NotImplementedError "TPU version must be 4 or higher"
before computing anything.

The kernel's form and what it cannot do (declared, never worked around): one packed batch of
self-attention with one segment-id vector for queries and keys, so cu_seqlens_q must equal
cu_seqlens_k (Unsupported otherwise); its causal mask compares packed indices, which is the
per-sequence rule when every L_b = S_b (both alignments agree); K/V heads are indexed like the
query heads (no GQA); q, k, v share one head dim; a sequence longer than 128 rows must be a
multiple of the 128-row block. Its `return_residuals` LSE is m + log2(l) of the logits scaled by
log2(e): a base-2 LSE (shipped as an expectation). Border translations: the rows after
cu_seqlens[B] are not passed (the output buffer holds 0 there, LSE −∞), (total, H, E) becomes
(1, total, H, E), the default scale 1/√E is passed as sm_scale (the kernel's default is 1).
jax is imported inside functions only.
"""
from __future__ import annotations

import math

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, importable, require
from attnconf.adapters.jax_nn import JaxArrays, _name, x64


class JaxPallasSegmentsAdapter(JaxArrays, Adapter):
    name = "jax-pallas-segments"
    description = ("jax.experimental.pallas.ops.gpu.attention.mha(segment_ids, interpret=True) on CPU: "
                   "packed self-attention, LSE from return_residuals")
    capabilities = Capabilities(operations=("sdpa_varlen",), dtypes=("float32", "float16", "bfloat16"),
                                causal_alignments=("top_left", "bottom_right"), gqa=False,
                                value_dim_differs=False)
    varlen_options = ()
    varlen_self_attention = True   # one segment-id vector: the checks draw cu_seqlens_k = cu_seqlens_q

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        return importable("jax.experimental.pallas.ops.gpu.attention") if available else (available, reason)

    def sdpa_varlen(self, query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                    is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False):
        import jax.numpy as jnp
        from jax.experimental.pallas.ops.gpu import attention

        cq, ck = np.asarray(cu_seqlens_q), np.asarray(cu_seqlens_k)
        require(np.array_equal(cq, ck), "the Pallas kernel takes one segment-id vector: cu_seqlens_q must equal cu_seqlens_k")
        require(query.shape[1] == key.shape[1], "the Pallas kernel indexes K/V heads like query heads (no GQA)")
        require(value.shape[-1] == query.shape[-1], "the Pallas kernel needs one head dim for q, k and v")
        # float64 does not trace: the kernel's float32 carries meet float64 ones in its scan (TypeError)
        require(_name(query) != "float64", "the Pallas kernel's online softmax keeps float32 carries: float64 does not trace")
        n = int(cq[-1])
        require(n > 0, "no query row: nothing for the kernel to compute")
        require(n <= 128 or n % 128 == 0, "the Pallas kernel needs the packed length to be <= 128 or a multiple of 128")
        segments = np.repeat(np.arange(cq.size - 1, dtype=np.int32), np.diff(cq))
        e = query.shape[-1]
        with x64(_name(query)):
            out, lse = attention.mha(query[None, :n], key[None, :n], value[None, :n], jnp.asarray(segments[None]),
                                     sm_scale=1.0 / math.sqrt(e) if scale is None else float(scale),
                                     causal=bool(is_causal), interpret=True, return_residuals=True)
            full = jnp.zeros(query.shape[:2] + (value.shape[-1],), out.dtype).at[:n].set(out[0])
            lse_full = jnp.full(query.shape[:2], -jnp.inf, lse.dtype).at[:n].set(lse[0].T)
        return full, lse_full
