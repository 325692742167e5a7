"""Bugs of the sdpa kernel options (spec sdpa.opt.*): windows off by one or misaligned, soft-cap
after the mask or as a clamp, sinks ignored or with a value row, ALiBi sign or alignment, the decode
frontier top-left, padded query rows NaN, key lengths ignored, chunk boundaries off by one or the
chunk read as a sliding window.

Each class overrides one step of `_sdpa_options.OptionSteps` (mixed into the control) and names the
report (docs/findings.md#kernel-options) it mirrors.
"""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class WindowLengthLeft(ZooAdapter):
    """Reads window left as a window *length* counting the diagonal: keys j − p_i > −left, one
    key short on the left (the 4096-vs-4097 confusion, transformers #29623, vllm #3385; spec
    sdpa.opt.window `window_length`). Bug class: window off by one on the left."""

    name = "known-bad/window-length-left"
    bug_class = "window off by one on the left"

    def window_allowed(self, rel, window):
        left, right = window
        return super().window_allowed(rel, (None if left is None else left - 1, right))


class WindowRightPlusOne(ZooAdapter):
    """Keeps one key too many after the query: j − p_i <= right + 1 (an inclusive/exclusive slip
    on the right bound; spec `right_plus_one`). Bug class: window off by one on the right."""

    name = "known-bad/window-right-plus-one"
    bug_class = "window off by one on the right"

    def window_allowed(self, rel, window):
        left, right = window
        return super().window_allowed(rel, (left, None if right is None else right + 1))


class WindowIndexBased(ZooAdapter):
    """Measures the window from the row index i whatever the alignment, as JAX's
    local_window_size does (spec `index_based`), while the case asks for bottom-right: the
    causal rule stays aligned. Bug class: window ignoring the alignment."""

    name = "known-bad/window-index-based"
    bug_class = "window ignoring the alignment"

    def visible(self, pos, s, is_causal, window, key_lengths):
        ok = super().visible(pos, s, is_causal, None, key_lengths)
        if window is None:
            return ok
        b, l = pos.shape
        rel = np.arange(s)[None, None, :] - np.arange(l)[None, :, None]
        return ok & np.broadcast_to(self.window_allowed(rel, tuple(window)), (b, l, s))[:, None]


class SoftcapAfterMask(ZooAdapter):
    """Caps the logits after the float mask and the bias were added, so a −∞ entry becomes −c
    and masked keys take part (ONNX before PR #7867; spec `after_mask`). Bug class: softcap
    after the mask."""

    name = "known-bad/softcap-after-mask"
    bug_class = "softcap after the mask"

    def option_logits(self, logits, attn_mask, visible, softcap, bias):
        if bias is not None:
            logits = logits + bias
        if attn_mask is not None and np.asarray(attn_mask).dtype != np.bool_:
            logits = logits + np.asarray(attn_mask).astype(logits.dtype)
            attn_mask = None
        if softcap is not None:
            logits = self.cap(logits, softcap)
        return self.masked_logits(logits, attn_mask, visible)


class SoftcapClamp(ZooAdapter):
    """Clamps the logits to [−c, c] instead of c·tanh(s/c) (spec `clamp`). Bug class: softcap
    as clamp."""

    name = "known-bad/softcap-clamp"
    bug_class = "softcap as clamp"

    def cap(self, logits, c):
        return np.clip(logits, -c, c)


class SinksIgnored(ZooAdapter):
    """Drops the sinks: every row's weights sum to 1 again (spec `ignored`). Bug class: sinks
    ignored."""

    name = "known-bad/sinks-ignored"
    bug_class = "sinks ignored"

    def sink_softmax(self, logits, sinks):
        return super().sink_softmax(logits, None)


class SinksValueRow(ZooAdapter):
    """Treats the sink as an extra key whose value is the first key's, v_0 (StreamingLLM-style
    sink token instead of gpt-oss's value-less logit; spec `value_row`). Bug class: sinks adding
    a value row."""

    name = "known-bad/sinks-value-row"
    bug_class = "sinks adding a value row"

    def sink_output(self, out, p, v, sinks):
        if sinks is None:
            return out
        rest = 1 - p.sum(axis=-1, keepdims=True)           # the sink's weight
        return out + rest * v[:, :, :1, :]


class AlibiSignFlipped(ZooAdapter):
    """Adds +m·|p_i − j|: distant keys are favoured (spec sdpa.opt.alibi `sign`). Bug class:
    ALiBi sign wrong."""

    name = "known-bad/alibi-sign"
    bug_class = "ALiBi sign wrong"

    def option_alibi_bias(self, slopes, pos, s, dt):
        return -super().option_alibi_bias(slopes, pos, s, dt)


class AlibiTopLeft(ZooAdapter):
    """Measures the ALiBi distance |i − j| from the row index, ignoring S − L (and the offset)
    where the case is bottom-right (spec `top_left`). Bug class: ALiBi alignment wrong."""

    name = "known-bad/alibi-top-left"
    bug_class = "ALiBi alignment wrong"

    def option_alibi_bias(self, slopes, pos, s, dt):
        b, l = pos.shape
        return super().option_alibi_bias(slopes, np.broadcast_to(np.arange(l)[None, :], (b, l)), s, dt)


class DecodeFrontierTopLeft(ZooAdapter):
    """A decode step's causal rule is the top-left tril(ones(L, S)), the past length ignored:
    with L = 1 the new token sees key 0 only (pytorch #108108; spec sdpa.opt.decode `top_left`).
    Bug class: decode causal frontier top-left."""

    name = "known-bad/decode-frontier-top-left"
    bug_class = "decode causal frontier top-left"

    def frontier_allowed(self, rel):
        return np.ones(rel.shape, bool)        # replaced below by the index rule

    def visible(self, pos, s, is_causal, window, key_lengths):
        ok = super().visible(pos, s, is_causal, window, key_lengths)
        if not is_causal:
            return ok
        l = pos.shape[1]
        return ok & (np.arange(s)[None, :] <= np.arange(l)[:, None])[None, None]


class PaddedQueryRowsNan(ZooAdapter):
    """Padded query rows (i >= query_lengths[b]) are left as NaN, the uninitialised output of a
    varlen kernel scattered back (spec sdpa.opt.query_lengths `nan`). Bug class: padded query
    rows NaN."""

    name = "known-bad/padded-query-rows-nan"
    bug_class = "padded query rows NaN"

    def pad_rows(self, out, query_lengths):
        if query_lengths is None:
            return out
        b, _, l, _ = out.shape
        padded = np.arange(l)[None, :] >= np.asarray(query_lengths).reshape(b, 1)
        return np.where(padded[:, None, :, None], out.dtype.type(np.nan), out)


class KeyLengthsIgnored(ZooAdapter):
    """Ignores key_lengths: the padding keys of a ragged batch take part (spec sdpa.opt.key_lengths
    `ignored`). Bug class: key_lengths ignored."""

    name = "known-bad/key-lengths-ignored"
    bug_class = "key_lengths ignored"

    def key_lengths_allowed(self, b, s, key_lengths):
        return np.ones((b, 1, s), bool)


class ChunkBoundaryOffByOne(ZooAdapter):
    """Counts chunks from position 1: ⌊(j + 1) / C⌋ = ⌊(p_i + 1) / C⌋, every boundary one
    position early (spec sdpa.opt.chunk `boundary_plus_one`; the kind of slip transformers #37351
    fixed in Llama 4's chunked mask). Bug class: chunk boundary off by one."""

    name = "known-bad/chunk-boundary-off-by-one"
    bug_class = "chunk boundary off by one"

    def chunk_allowed(self, pos, s, chunk):
        return super().chunk_allowed(pos + 1, s + 1, chunk)[..., 1:]


class ChunkAsWindow(ZooAdapter):
    """Reads the chunk size C as a sliding window of C keys, (C − 1, 0): each query sees the C
    keys up to itself instead of its chunk's keys up to itself (spec sdpa.opt.chunk
    `sliding_window`). Bug class: chunking confused with a window."""

    name = "known-bad/chunk-as-window"
    bug_class = "chunking confused with a window"

    def chunk_allowed(self, pos, s, chunk):
        rel = np.arange(s)[None, None, :] - pos[:, :, None]
        return ((rel <= 0) & (rel >= -(chunk - 1)))[:, None]
