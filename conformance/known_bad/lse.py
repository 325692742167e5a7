"""Bugs of the log-sum-exp and of merging attention states (spec sdpa.lse.*, sdpa.merge.*): an
LSE left in base 2, without the softmax scale, finite or NaN for an empty row, ignoring sinks; a
merge without the max subtraction, one that turns two empty states into NaN, one weighting by
exp(lse) without normalising.

Each class overrides one step of `_lse.LseSteps` (mixed into the control) and names the upstream
report it mirrors.
"""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class LseBase2(ZooAdapter):
    """Returns the kernel's internal base-2 LSE (log₂ of the denominator) as if it were natural,
    as FlashInfer's `return_lse` is and as callers misread it (flashinfer-ai/flashinfer #4485;
    FlexAttention's LSE off by ln 2, pytorch/pytorch #181645; spec `base2`). Bug class: LSE left
    in base 2."""

    name = "known-bad/lse-base2"
    bug_class = "LSE left in base 2"

    def lse_base(self, lse):
        return lse / lse.dtype.type(np.log(2.0))


class LseUnscaled(ZooAdapter):
    """Takes the log-sum-exp of the unscaled logits q·k while the softmax uses the scaled ones
    (spec `unscaled`). Bug class: LSE without the softmax scale."""

    name = "known-bad/lse-unscaled"
    bug_class = "LSE without the softmax scale"

    def lse_logits(self, logits, scale):
        return logits / logits.dtype.type(scale)


class LseEmptyFinite(ZooAdapter):
    """Returns 0 for a row whose keys are all hidden (PyTorch's CPU flash kernel; FlashInfer's
    finite LSE for fully-masked rows, flashinfer-ai/flashinfer #4452; FlashMLA PR #77; spec
    `finite`). Bug class: finite LSE for an empty row."""

    name = "known-bad/lse-empty-finite"
    bug_class = "finite LSE for an empty row"

    def lse_empty(self, lse, empty):
        return np.where(empty, lse.dtype.type(0), lse)


class LseEmptyNaN(ZooAdapter):
    """Computes an empty row's LSE as max + log(sum) with max = −∞ unguarded: −∞ + log 0 … then
    −∞ − (−∞) = NaN (spec `nan`). Bug class: NaN LSE for an empty row."""

    name = "known-bad/lse-empty-nan"
    bug_class = "NaN LSE for an empty row"

    def lse_empty(self, lse, empty):
        return np.where(empty, lse.dtype.type(np.nan), lse)


class LseIgnoringSinks(ZooAdapter):
    """Applies the sinks to the output but returns the keys-only LSE (what a kernel that rescales
    its output for the sink afterwards returns if it forgets the LSE, HF transformers' flex recipe
    for gpt-oss; spec sdpa.lse.sinks `ignored`). Bug class: LSE ignoring sinks."""

    name = "known-bad/lse-ignoring-sinks"
    bug_class = "LSE ignoring sinks"

    def lse_sinks(self, sinks):
        return None


class MergeNoMax(ZooAdapter):
    """Weights each state by exp(lse_n) / Σ exp(lse_m) without subtracting the maximum: inf/inf =
    NaN once an LSE passes ~709 (float64) or ~88 (float32), 0/0 below −745 (spec `overflow`).
    Bug class: merge without max subtraction (overflow)."""

    name = "known-bad/merge-no-max"
    bug_class = "merge without max subtraction (overflow)"

    def merge_weights(self, lses):
        return np.exp(lses), np.isneginf(lses.max(axis=0))

    def merge_lse(self, w, lses, empty):
        with np.errstate(divide="ignore"):
            return np.log(w.sum(axis=0))


class MergeEmptyNaN(ZooAdapter):
    """Subtracts the maximum unguarded: where every state is empty, exp(−∞ − (−∞)) = NaN (FlashInfer
    merge_state, flashinfer-ai/flashinfer #4051; vLLM merge_attn_states, vllm-project/vllm PRs
    #28181, #39148; spec sdpa.merge.empty `nan`). Bug class: merge of two empty states NaN."""

    name = "known-bad/merge-empty-nan"
    bug_class = "merge of two empty states NaN"

    def merge_weights(self, lses):
        return np.exp(lses - lses.max(axis=0)), np.zeros(lses.shape[1:], bool)


class MergeUnnormalised(ZooAdapter):
    """Weights each state's output by exp(lse_n) and never divides by the weights' sum (spec
    `unnormalised`). Bug class: merge weighting by exp(lse) unnormalised."""

    name = "known-bad/merge-unnormalised"
    bug_class = "merge weighting by exp(lse) unnormalised"

    def merge_output(self, w, outs, empty, lses):
        o = np.where(np.isneginf(lses)[..., None], outs.dtype.type(0), outs)
        return (np.exp(lses)[..., None] * o).sum(axis=0)
