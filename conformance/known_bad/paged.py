"""Bugs of the paged KV cache (spec/paged.md): the block table read off by one, the last partial
page read whole, a page size assumed, the cache lengths ignored (the capacity read), a finite
−5·10⁴ mask sentinel.

Each class overrides one step of `_paged.PagedSteps` (mixed into the control) and names the
upstream report it mirrors.
"""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class BlockTableOffByOne(ZooAdapter):
    """Reads block-table column c + 1 for the keys of column c (the last column stays), the
    index slip of wrong page indices under speculative decoding (vllm PR #5412; spec
    paged.gather `table_off_by_one`). Bug class: block table read off by one."""

    name = "known-bad/block-table-off-by-one"
    bug_class = "block table read off by one"

    def page_of(self, table, b, t, page):
        return table[b, np.minimum(t // page + 1, table.shape[1] - 1)]


class LastPageWhole(ZooAdapter):
    """Reads the last page of a sequence whole: the slots after cache_lengths[b] on a partial
    page take part (spec paged.partial `whole_page`). Bug class: the last partial page read
    whole."""

    name = "known-bad/last-page-whole"
    bug_class = "the last partial page read whole"

    def slots(self, n, page):
        return -(-n // page) * page


class PageSizeAssumed(ZooAdapter):
    """Addresses the cache with a fixed page size of 16 whatever the pages' own (spec
    paged.gather `page_size_assumed`): key t at flat slot table[b, t // 16]·16 + t mod 16
    of the page pool. Bug class: a page size assumed."""

    name = "known-bad/page-size-assumed"
    bug_class = "a page size assumed"

    def page_size(self, key_pages):
        return 16

    def gather(self, pages, table, lengths, width, page):
        flat = pages.reshape((-1,) + pages.shape[2:])
        out = np.zeros((table.shape[0], width) + pages.shape[2:], pages.dtype)
        for i, n in enumerate(lengths):
            t = np.arange(int(n))
            out[i, :len(t)] = flat[(table[i, t // page] * page + t % page) % len(flat)]
        return out.transpose(0, 2, 1, 3)


class CacheLengthsIgnored(ZooAdapter):
    """Attends to the whole allocated capacity, max_pages·page_size keys per sequence, as if
    cache_lengths were absent (flash-attention #1417: output changing with the allocated cache
    length; spec paged.garbage `capacity`). Bug class: cache lengths ignored."""

    name = "known-bad/cache-lengths-ignored"
    bug_class = "cache lengths ignored"

    def length_of(self, lengths, table, page):
        return np.full(len(np.asarray(lengths)), table.shape[1] * page, np.int64)


class FiniteSentinel(ZooAdapter):
    """Masks hidden keys with a finite −5·10⁴ instead of −∞: a row whose real logits lie below it
    gives its weight to the hidden keys (flashinfer #4267, #4450; spec paged.sentinel
    `finite`). Bug class: a finite −5·10⁴ sentinel."""

    name = "known-bad/finite-sentinel"
    bug_class = "a finite −5·10⁴ sentinel"
    hidden_logit = -5e4
