"""The zoo control's `sdpa_lse` and `merge_attention_states` (spec sdpa.lse.*, sdpa.merge.*), as
small overridable steps.

`LseSteps` is mixed into `_base.ZooAdapter`: `sdpa_lse` forms the control's logits (its plain or
kernel-option steps), takes the row max, the sum of exponentials and the log in the control's
compute dtype (float64 for float64, float32 otherwise: the LSE stays float32 below float64), and
returns the control's own sdpa output beside it; `merge_attention_states` merges with the max
subtracted, empty states weighted 0. The bugs of known_bad/lse.py override one step each.
Written from the spec, sharing no code with attnconf.reference.
"""
from __future__ import annotations

import numpy as np


class LseSteps:
    """The steps of sdpa.lse.* and sdpa.merge.*; `self` is a ZooAdapter."""

    # -- sdpa_lse -----------------------------------------------------------------------------
    def lse_logits(self, logits, scale):
        """The logits whose log-sum-exp is returned: the scaled ones (sdpa.lse.definition)."""
        return logits

    def lse_sinks(self, sinks):
        """The sinks that join the LSE's denominator (sdpa.lse.sinks)."""
        return sinks

    def lse_base(self, lse):
        """The natural log (sdpa.lse.base)."""
        return lse

    def lse_empty(self, lse, empty):
        """−∞ for a row with nothing in its denominator (sdpa.lse.empty)."""
        return np.where(empty, lse.dtype.type(-np.inf), lse)

    def _lse_problem(self, query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa,
                     options):
        """(masked logits (B, H, L, S), scale, padded rows (B, 1, L) or None) in the compute dtype."""
        if not options:
            _, q, k, v, s, logits, _ = self._prepare(query, key, value, attn_mask, is_causal, causal_alignment,
                                                     scale, enable_gqa)
            return logits, s, None
        _, q, k, v, s, logits, _ = self._prepare(query, key, value, None, False, causal_alignment, scale,
                                                 enable_gqa)
        b, _, l, _ = q.shape
        sk = k.shape[2]
        ql, kl = options.get("query_lengths"), options.get("key_lengths")
        pos = self.query_positions(b, l, sk, causal_alignment, options.get("query_offset"), kl, ql)
        vis = self.visible(pos, sk, is_causal, options.get("window"), kl)
        slopes = options.get("alibi_slopes")
        bias = None if slopes is None else self.option_alibi_bias(slopes, pos, sk, logits.dtype)
        logits = self.option_logits(logits, attn_mask, vis, options.get("softcap"), bias)
        padded = None if ql is None else (np.arange(l)[None, :] >= np.asarray(ql).reshape(b, 1))[:, None]
        return logits, s, padded

    def sdpa_lse(self, query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
                 scale=None, enable_gqa=False, **options):
        options = {n: x for n, x in options.items() if x is not None}
        out = self.sdpa(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                        causal_alignment=causal_alignment, scale=scale, enable_gqa=enable_gqa, **options)
        logits, s, padded = self._lse_problem(query, key, value, attn_mask, is_causal, causal_alignment, scale,
                                              enable_gqa, options)
        logits = self.lse_logits(logits, s)
        top = logits.max(axis=-1)
        sinks = self.lse_sinks(options.get("sinks"))
        sk = None if sinks is None else np.asarray(sinks).astype(logits.dtype)[None, :, None]
        if sk is not None:
            top = np.maximum(top, sk)
        empty = np.isneginf(top)
        shift = np.where(empty, logits.dtype.type(0), top)
        z = np.exp(logits - shift[..., None]).sum(axis=-1)
        if sk is not None:
            z = z + np.exp(sk - shift)
        with np.errstate(divide="ignore"):
            lse = shift + np.log(np.where(empty, logits.dtype.type(1), z))
        lse = self.lse_empty(self.lse_base(lse), empty)
        if padded is not None:
            lse = np.where(padded, lse.dtype.type(-np.inf), lse)
        return out, lse.astype(logits.dtype)

    # -- merge_attention_states -----------------------------------------------------------------
    def merge_weights(self, lses):
        """(weights (N, B, H, L), all-empty rows (B, H, L)): exp(lse_n − M), 0 for empty states."""
        top = lses.max(axis=0)
        empty = np.isneginf(top)
        return np.exp(lses - np.where(empty, lses.dtype.type(0), top)), empty

    def merge_output(self, w, outs, empty, lses):
        """Σ w_n·o_n / Σ w_n; empty states' outputs never count; all-empty rows 0."""
        o = np.where(w[..., None] == 0, outs.dtype.type(0), outs)
        z = w.sum(axis=0)
        out = (w[..., None] * o).sum(axis=0) / np.where(empty, z.dtype.type(1), z)[..., None]
        return np.where(empty[..., None], out.dtype.type(0), out)

    def merge_lse(self, w, lses, empty):
        top = np.where(empty, lses.dtype.type(0), lses.max(axis=0))
        with np.errstate(divide="ignore"):
            lse = top + np.log(np.where(empty, w.dtype.type(1), w.sum(axis=0)))
        return np.where(empty, lse.dtype.type(-np.inf), lse)

    def merge_attention_states(self, outputs, lses):
        from attnconf.dtypes import dtype_name

        name = dtype_name(np.asarray(outputs).dtype)
        cd = self.compute_dtype(name)
        outs, ls = np.asarray(outputs).astype(cd), np.asarray(lses).astype(cd)
        with np.errstate(invalid="ignore", over="ignore"):
            w, empty = self.merge_weights(ls)
            out = self.merge_output(w, outs, empty, ls)
            lse = self.merge_lse(w, ls, empty)
        return out.astype(self.output_dtype(name)), lse.astype(cd)
