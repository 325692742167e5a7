"""`jax-varlen`: JAX's `jax.nn.dot_product_attention` with per-sequence lengths
(`query_seq_lengths`, `key_value_seq_lengths`) on the padded form of a packed batch, judged as
`sdpa_varlen` (spec/varlen.md). JAX has no packed (cu_seqlens) entry point in jax.nn; its
documented way to attend over sequences of different lengths is this padded one.

Border translations (none repairs JAX's numerics): the packed (total, H, E) rows of sequence b are
gathered into row b of a (B, max L_b, H, E) array (JAX's BTNH layout) with zeros after L_b, the
lengths L_b and S_b become query_seq_lengths and key_value_seq_lengths (int32, as JAX demands), and
the output rows are scattered back, padding rows 0 (the output buffer a packed caller allocates).
What JAX's API does not have is declared: its is_causal and local_window_size are index based
(top-left: `varlen_alignments = ("top_left",)`; bottom-right causal is Unsupported); no softcap,
no sinks, no LSE (lse is None, an optional output); Ev must equal E. A sequence without keys
follows JAX's fully-masked rule (masked logits −0.7·finfo.max, so the mean of the padded V rows,
jax/_src/nn/functions.py), shipped as an expectation. jax is imported inside functions only.
"""
from __future__ import annotations

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.jax_nn import JaxArrays, _compiled, _lengths, _name, local_window_size, x64
from attnconf.dtypes import DTYPE_NAMES


class JaxVarlenAdapter(JaxArrays, Adapter):
    name = "jax-varlen"
    implementation = "xla"
    description = ("jax.nn.dot_product_attention(query_seq_lengths, key_value_seq_lengths) on the "
                   "padded form of the packed batch, jitted; top-left causal, no LSE")
    capabilities = Capabilities(operations=("sdpa_varlen",), dtypes=DTYPE_NAMES,
                                causal_alignments=("top_left",), value_dim_differs=False)
    varlen_options = ("window",)
    varlen_alignments = ("top_left",)

    def sdpa_varlen(self, query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                    is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False, window=None):
        import jax.numpy as jnp

        require(value.shape[-1] == query.shape[-1],
                "jax.nn.dot_product_attention needs value's head dim equal to key's (Ev == E)")
        require(causal_alignment == "top_left" or not is_causal and window is None,
                "jax.nn.dot_product_attention's is_causal and local_window_size are index based (top-left)")
        cq, ck = (np.asarray(c).astype(np.int64) for c in (cu_seqlens_q, cu_seqlens_k))
        lq, lk = np.diff(cq), np.diff(ck)
        L, S = max(int(lq.max()), 1), max(int(lk.max()), 1)
        rows_q, valid_q = _gather_index(cq, L, query.shape[0])
        rows_k, valid_k = _gather_index(ck, S, key.shape[0])
        with x64(_name(query)):
            # (B, T, N, H) padded with zeros (one zero row appended to each packed array, which the
            # padding slots read), transposed to the canonical (B, H, T, E) _compiled takes
            qp, kp, vp = (jnp.take(jnp.concatenate([x, jnp.zeros((1,) + tuple(x.shape[1:]), x.dtype)]), idx, axis=0)
                          .transpose(0, 2, 1, 3) for x, idx in ((query, rows_q), (key, rows_k), (value, rows_k)))
            lws = local_window_size(window, "top_left", L, S)
            fn = _compiled(self.implementation, bool(is_causal), None if scale is None else float(scale), None,
                           False, lws, (True, True))
            out = fn(qp, kp, vp, None, _lengths(lq), _lengths(lk)).transpose(0, 2, 1, 3)   # (B, L, H, E)
            valid = np.flatnonzero(valid_q.reshape(-1))
            packed = jnp.zeros((query.shape[0],) + tuple(out.shape[2:]), out.dtype)
            packed = packed.at[rows_q.reshape(-1)[valid]].set(out.reshape((-1,) + tuple(out.shape[2:]))[valid])
        return packed, None


def _gather_index(cu, T, zero_row):
    """(B, T) packed row of each padded slot (`zero_row`, the appended zero row, where padding) and
    (B, T) whether it is a real row."""
    t = np.arange(T)[None, :]
    valid = t < np.diff(cu)[:, None]
    return np.where(valid, cu[:-1, None] + t, zero_row), valid
