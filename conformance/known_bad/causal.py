"""Causal bugs: off by one, wrong alignment for L != S, mask and causal combined wrongly."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class CausalLeaksNextKey(ZooAdapter):
    """Query i sees keys j <= i + 1 (triu(diagonal=2) for triu(diagonal=1)): one future key
    leaks. Bug class: causal off by one (pytorch #108108 family)."""

    name = "known-bad/causal-leaks-next-key"
    bug_class = "causal off by one"

    def causal_allowed(self, l, s, alignment):
        return np.roll(super().causal_allowed(l, s, alignment), 1, axis=-1) | super().causal_allowed(l, s, alignment)


class CausalExcludesDiagonal(ZooAdapter):
    """Query i sees only keys j < i: the diagonal is masked too, so row 0 is fully masked.
    Bug class: causal off by one."""

    name = "known-bad/causal-excludes-diagonal"
    bug_class = "causal off by one"

    def causal_allowed(self, l, s, alignment):
        shift = 0 if alignment == "top_left" else s - l
        return np.arange(s)[None, :] < np.arange(l)[:, None] + shift


class CausalAlwaysBottomRight(ZooAdapter):
    """Always aligns the causal mask bottom-right (as FlashAttention >= 2.1 does) while claiming
    the top-left default (pytorch #108108, flash-attention #282, mlx #2835). Bug class: causal
    alignment when L != S."""

    name = "known-bad/causal-always-bottom-right"
    bug_class = "wrong causal alignment"

    def causal_allowed(self, l, s, alignment):
        return super().causal_allowed(l, s, "bottom_right")


class CausalIgnoresAlignment(ZooAdapter):
    """Accepts causal_alignment="bottom_right" but always applies top-left (onnxruntime #29020:
    a kernel ignoring the spec's bottom-right errata). Bug class: causal alignment."""

    name = "known-bad/causal-ignores-alignment"
    bug_class = "wrong causal alignment"

    def causal_allowed(self, l, s, alignment):
        return super().causal_allowed(l, s, "top_left")


class MaskReplacesCausal(ZooAdapter):
    """When attn_mask and is_causal are both given, the mask replaces the causal mask instead of
    intersecting with it. Bug class: mask + causal combination."""

    name = "known-bad/mask-replaces-causal"
    bug_class = "mask and causal together"

    def masked_logits(self, logits, attn_mask, causal):
        return super().masked_logits(logits, attn_mask, None if attn_mask is not None else causal)
