"""Bugs of packed variable-length attention (spec section `varlen`): cu_seqlens read off by one,
top-left alignment inside packed sequences, sequences bleeding into their neighbours, NaN for an
empty sequence, NaN padding leaking through a zero weight.

Each class overrides one step of `_varlen.VarlenSteps` (mixed into the control) and names the
upstream report it mirrors.
"""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class CuSeqlensOffByOne(ZooAdapter):
    """Reads each sequence's keys up to and including cu_seqlens_k[b + 1] (an inclusive end), so
    every sequence sees the first key of the next one, or a padding row (spec varlen.layout).
    Bug class: cu_seqlens off by one."""

    name = "known-bad/varlen-cu-seqlens-off-by-one"
    bug_class = "cu_seqlens off by one"

    def varlen_key_range(self, ck, b, total):
        start, end = super().varlen_key_range(ck, b, total)
        return start, min(end + 1, total)


class VarlenTopLeft(ZooAdapter):
    """Applies the causal rule top-left (j <= i) inside every packed sequence whatever the case
    asks, as PyTorch's is_causal does (pytorch #108108) where FlashAttention's varlen kernels are
    bottom-right (spec varlen.causal `top_left`). Bug class: top-left alignment inside packed
    sequences."""

    name = "known-bad/varlen-top-left"
    bug_class = "top-left alignment inside packed sequences"

    def varlen_positions(self, lb, sb, alignment):
        return super().varlen_positions(lb, sb, "top_left")


class VarlenBleed(ZooAdapter):
    """Lets each sequence see the keys of the sequence before it too (a block-diagonal mask whose
    blocks start one sequence early; spec varlen.sequence `bleed`). Bug class: sequences bleeding
    into their neighbours."""

    name = "known-bad/varlen-bleed"
    bug_class = "sequences bleeding into their neighbours"

    def varlen_key_range(self, ck, b, total):
        start, end = super().varlen_key_range(ck, b, total)
        return (int(ck[b - 1]) if b > 0 else start), end


class VarlenEmptyNaN(ZooAdapter):
    """A sequence without keys divides 0 by 0: its rows are NaN (flash-attention #1537, spec
    varlen.empty `nan`). Bug class: NaN for an empty sequence."""

    name = "known-bad/varlen-empty-nan"
    bug_class = "NaN for an empty sequence"

    def varlen_empty_rows(self, out, lse):
        return np.full_like(out, np.nan), np.full_like(lse, np.nan)


class VarlenNaNPaddingLeak(ZooAdapter):
    """Hides the keys of other sequences and the padding by multiplying their weights by 0 over
    the whole packed value tensor instead of leaving them out, so NaN in the padding gives
    0 · NaN = NaN (xformers' tests poison padding with NaN for this; spec varlen.padding
    `nan_leak`). Bug class: NaN padding leaking."""

    name = "known-bad/varlen-nan-padding-leak"
    bug_class = "NaN padding leaking"

    def varlen_combine(self, p, v, v_all, start, end):
        full = np.zeros(p.shape[:-1] + (v_all.shape[1],), p.dtype)
        full[..., start:end] = p
        with np.errstate(invalid="ignore"):   # the bug: 0 * NaN is NaN
            return np.matmul(full, v_all)
