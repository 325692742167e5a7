"""Softmax bugs: wrong axis, no max subtraction, a blocked softmax that forgets to rescale."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class SoftmaxOverQueries(ZooAdapter):
    """Softmax normalised over the query axis instead of the key axis (dim=-2 for dim=-1).
    Bug class: softmax axis; weights of a row no longer sum to 1."""

    name = "known-bad/softmax-over-queries"
    bug_class = "softmax axis"

    def softmax(self, logits):
        return np.swapaxes(super().softmax(np.swapaxes(logits, -1, -2)), -1, -2)


class NoMaxSubtraction(ZooAdapter):
    """exp(logits) without subtracting the row max: overflows to inf/NaN for logits above ~88
    in float32 (~11 in float16). Bug class: softmax overflow (pytorch #119131)."""

    name = "known-bad/no-max-subtraction"
    bug_class = "softmax overflow"

    def softmax(self, logits):
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(logits)
            p = e / e.sum(axis=-1, keepdims=True)
        dead = np.isneginf(logits.max(axis=-1, keepdims=True))
        return np.where(dead, 0, p).astype(logits.dtype)


class BlockedSoftmaxNoRescale(ZooAdapter):
    """An online (FlashAttention-style) softmax over key blocks of 4 that updates the running
    max but never rescales the accumulator and denominator of earlier blocks. Correct whenever
    the first block holds the row max, wrong otherwise; real kernels use blocks of 64-128, so
    a suite must use S larger than the block. Bug class: blocked softmax rescaling."""

    name = "known-bad/blocked-softmax-no-rescale"
    bug_class = "blocked softmax rescaling"
    block = 4

    def softmax(self, logits):
        raise AssertionError("unused: combine() does the blocked softmax")

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False):
        name, q, k, v, s, logits, _ = self._prepare(query, key, value, attn_mask, is_causal,
                                                    causal_alignment, scale, enable_gqa)
        shape = logits.shape[:-1] + (1,)
        m = np.full(shape, -np.inf, logits.dtype)
        denom = np.zeros(shape, logits.dtype)
        acc = np.zeros(logits.shape[:-1] + (v.shape[-1],), logits.dtype)
        with np.errstate(invalid="ignore"):
            for j in range(0, logits.shape[-1], self.block):
                blk = logits[..., j:j + self.block]
                m = np.maximum(m, blk.max(axis=-1, keepdims=True))
                e = np.exp(blk - np.where(np.isneginf(m), 0, m))
                # BUG: acc and denom of earlier blocks should be multiplied by exp(m_old - m)
                denom = denom + e.sum(axis=-1, keepdims=True)
                acc = acc + np.matmul(e, v[..., j:j + self.block, :])
            out = np.where(denom > 0, acc / np.where(denom > 0, denom, 1), 0)
        return out.astype(self.output_dtype(name))
