"""The zoo control's paged KV cache (spec/paged.md), as small overridable steps.

`PagedSteps` is mixed into `_base.ZooAdapter`: its `sdpa_paged` gathers each sequence's keys from
its pages (`page_of`, `slots`, `length_of`), places the queries at the cache's last positions,
then computes the output with the control's own sdpa steps (`sdpa_options`) and the lse in the
control's compute dtype. The bugs of known_bad/paged.py override one step each. Written from the
spec, sharing no code with attnconf.reference.
"""
from __future__ import annotations

import numpy as np


class PagedSteps:
    """The steps of paged.*; `self` is a ZooAdapter."""

    hidden_logit = -np.inf          # paged.sentinel: hidden keys are −∞, never a finite value

    def page_size(self, key_pages):
        return key_pages.shape[1]

    def length_of(self, lengths, table, page):
        """K_b per sequence (paged.gather)."""
        return np.asarray(lengths, np.int64)

    def page_of(self, table, b, t, page):
        """The page holding key t of sequence b."""
        return table[b, t // page]

    def slots(self, n, page):
        """How many slots of a sequence's pages hold keys (n keys): n, the rest are garbage."""
        return n

    def gather(self, pages, table, lengths, width, page):
        b = table.shape[0]
        out = np.zeros((b, width) + pages.shape[2:], pages.dtype)
        for i in range(b):
            n = int(lengths[i])
            t = np.arange(self.slots(n, page))
            out[i, :len(t)] = pages[self.page_of(table, i, t, page), t % page]
        return out.transpose(0, 2, 1, 3)

    def sdpa_paged(self, query, key_pages, value_pages, block_table, cache_lengths, *, is_causal=False,
                   scale=None, enable_gqa=False, window=None, softcap=None, chunk=None, sinks=None,
                   alibi_slopes=None):
        table = np.asarray(block_table, np.int64)
        page = self.page_size(key_pages)
        lengths = self.length_of(cache_lengths, table, page)
        read = np.array([self.slots(int(n), page) for n in lengths])
        width = max(1, int(read.max(initial=0)))
        k = self.gather(np.asarray(key_pages), table, lengths, width, page)
        v = self.gather(np.asarray(value_pages), table, lengths, width, page)
        kw = dict(is_causal=is_causal, causal_alignment="bottom_right", scale=scale, enable_gqa=enable_gqa,
                  window=window, softcap=softcap, chunk=chunk, sinks=sinks, alibi_slopes=alibi_slopes,
                  key_lengths=read)
        kw = {n: x for n, x in kw.items() if x is not None}
        return self.paged_attend(query, k, v, lengths, kw)

    def paged_attend(self, query, k, v, lengths, kw):
        """(output, lse): the control's sdpa over the gathered keys, and the log-sum-exp of the
        same logits (−∞ for a row with nothing visible and no sink)."""
        captured = {}
        original = self.sink_softmax

        def softmax(logits, sinks):
            logits = np.where(np.isneginf(logits), logits.dtype.type(self.hidden_logit), logits)
            captured["logits"], captured["sinks"] = logits, sinks
            return original(logits, sinks)

        self.sink_softmax = softmax
        try:
            out = self.sdpa_options(query, k, v, **kw)
        finally:
            del self.sink_softmax
        s = captured["logits"]
        top = s.max(axis=-1, keepdims=True)
        if captured["sinks"] is not None:
            top = np.maximum(top, np.asarray(captured["sinks"]).astype(s.dtype)[None, :, None, None])
        dead = np.isneginf(top)
        shift = np.where(dead, 0, top)
        z = np.exp(s - shift).sum(axis=-1, keepdims=True)
        if captured["sinks"] is not None:
            z = z + np.exp(np.asarray(captured["sinks"]).astype(s.dtype)[None, :, None, None] - shift)
        with np.errstate(divide="ignore"):
            lse = np.where(dead, -np.inf, shift + np.log(np.where(dead, 1, z)))[..., 0]
        return out, lse.astype(np.float64 if out.dtype == np.float64 else np.float32)   # paged.dtype
