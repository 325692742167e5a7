"""Mask bugs: polarity, where the mask is applied, fully-masked rows, mask orientation."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class InvertedBoolMask(ZooAdapter):
    """Bool mask read as True = masked out, the torch.nn.MultiheadAttention convention applied
    to SDPA (pytorch #170400, transformers PR #38094). Bug class: mask polarity."""

    name = "known-bad/inverted-bool-mask"
    bug_class = "mask polarity"

    def bool_allowed(self, mask):
        return ~np.asarray(mask, dtype=bool)


class MaskAfterSoftmax(ZooAdapter):
    """The mask is applied to the probabilities after the softmax (bool: weights zeroed without
    renormalising; float: added to the probabilities). Bug class: mask added after softmax."""

    name = "known-bad/mask-after-softmax"
    bug_class = "mask added after softmax"

    def masked_logits(self, logits, attn_mask, causal):
        return super().masked_logits(logits, None, causal)

    def post_softmax(self, p, attn_mask):
        if attn_mask is None:
            return p
        m = np.asarray(attn_mask)
        if m.dtype == np.bool_:
            return p * m
        return p + m.astype(p.dtype)


class FullyMaskedNaN(ZooAdapter):
    """Fully-masked rows give NaN (softmax of all -inf: 0/0), as PyTorch did before 2.5
    (pytorch #103963, #103749, #41508, #124877; iree #24175; mlx #2395). Bug class: NaN on
    fully-masked rows, while claiming the canonical zero policy."""

    name = "known-bad/fully-masked-nan"
    bug_class = "NaN on fully-masked rows"

    def softmax(self, logits):
        row_max = logits.max(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore"):
            e = np.exp(logits - row_max)
            return (e / e.sum(axis=-1, keepdims=True)).astype(logits.dtype)


class FullyMaskedMeanV(ZooAdapter):
    """Masked logits set to a large finite negative (-0.7 * finfo.max, as JAX does), so a
    fully-masked row gives the mean of V, while claiming the canonical zero policy. Bug class:
    fully-masked rows (mean of V)."""

    name = "known-bad/fully-masked-mean-v"
    bug_class = "mean of V on fully-masked rows"

    def masked_logits(self, logits, attn_mask, causal):
        out = super().masked_logits(logits, attn_mask, causal)
        big = logits.dtype.type(-0.7 * np.finfo(logits.dtype).max)
        return np.where(np.isneginf(out), big, out)


class MaskTransposed(ZooAdapter):
    """A square (.., L, L) mask is read as (.., S, L), i.e. transposed (a kernel that takes the
    mask in key-major order). Bug class: mask broadcast/orientation."""

    name = "known-bad/mask-transposed"
    bug_class = "mask orientation"

    def masked_logits(self, logits, attn_mask, causal):
        if attn_mask is not None and np.ndim(attn_mask) >= 2 and np.shape(attn_mask)[-1] == np.shape(attn_mask)[-2]:
            attn_mask = np.swapaxes(np.asarray(attn_mask), -1, -2)
        return super().masked_logits(logits, attn_mask, causal)
