"""`torch-flex-paged`: FlexAttention's paged attention
(`torch.nn.attention.experimental._paged_attention.PagedAttention`) for `sdpa_paged`, eager.

The physical cache is the page pool laid out as FlexAttention's PagedAttention keeps it: one
(1, Hkv, N·P, E) tensor whose row n·P + s is slot s of page n. The case's block table becomes the
PagedAttention's page table (`page_table[b, c]` = block_table[b, c] for the pages that hold keys,
−1 after) and its inverse `physical_to_logical`, the two tensors its `reserve` fills; the logical
block mask (create_block_mask with BLOCK_SIZE (·, P), as its docs require) is converted with
`convert_logical_block_mask(block_mask, kv_len=cache_lengths)` and the score_mod with
`get_score_mod`, then flex_attention runs on the page pool with `return_aux=AuxRequest(lse=True)`.

Border translations (none repairs FlexAttention's numerics):
- positions: p_i = K_b − L + i (spec paged.positions), written into the mask_mod/score_mod
  from q_idx as a FlexAttention user writes a decode mask;
- window (left, right), chunk C: mask_mod terms on the logical kv index, as torch-flex's;
- softcap, ALiBi: score_mod terms; sinks: FlexAttention has none, applied by the LSE
  renormalisation HF transformers' flex integration uses (out·exp(lse − lse'), lse' =
  logaddexp(lse, sink));
- lse: as FlexAttention returns it, float32 below float64 (spec paged.dtype).

Eager only. torch.compile(flex_attention) would generate a kernel per shape and page size (tens of
seconds each on this CPU build, see torch-flex), so a compiled paged row is not bundled.
"""
from __future__ import annotations

import warnings

from attnconf.adapters.base import Adapter, Capabilities, importable, require
from attnconf.adapters.pytorch import TorchArrays
from attnconf.dtypes import DTYPE_NAMES


class TorchFlexPagedAdapter(TorchArrays, Adapter):
    name = "torch-flex-paged"
    description = ("torch.nn.attention.experimental._paged_attention.PagedAttention over flex_attention, "
                   "eager: the block table as its page table, options as mask_mod / score_mod")
    capabilities = Capabilities(
        operations=("sdpa_paged",), dtypes=DTYPE_NAMES, causal_alignments=("bottom_right",),
        sdpa_options=("window", "softcap", "chunk", "sinks", "alibi_slopes"),
    )

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        return importable("torch.nn.attention.experimental._paged_attention") if available else (available, reason)

    def sdpa_paged(self, query, key_pages, value_pages, block_table, cache_lengths, *, is_causal=False,
                   scale=None, enable_gqa=False, window=None, softcap=None, chunk=None, sinks=None,
                   alibi_slopes=None):
        import torch

        with torch.no_grad():
            return self._call(query, key_pages, value_pages, block_table, cache_lengths, is_causal, scale,
                              window, softcap, chunk, sinks, alibi_slopes)

    def _paging(self, block_table, lengths, n_pages, page):
        """A PagedAttention whose page table is the case's block table (used entries only)."""
        import torch
        from torch.nn.attention.experimental._paged_attention import PagedAttention

        B, M = block_table.shape
        paged = PagedAttention(n_pages, page, B, device=str(block_table.device))
        used = (torch.arange(M)[None, :] * page) < lengths[:, None]
        paged.page_table[:, :M] = torch.where(used, block_table.to(torch.int64), -1)
        for b in range(B):
            cols = torch.nonzero(used[b]).flatten()
            paged.physical_to_logical[b, block_table[b, cols].to(torch.int64)] = cols
        paged.capacity = used.sum(dim=1) * page
        return paged

    def _call(self, query, key_pages, value_pages, block_table, cache_lengths, is_causal, scale, window,
              softcap, chunk, sinks, alibi_slopes):
        import torch
        from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention

        require(query.ndim == 4 and key_pages.ndim == 4, "attnconf passes 4-D query and pages")
        B, H, L, _ = query.shape
        N, P, Hkv, E = key_pages.shape
        M = block_table.shape[1]
        lengths = cache_lengths.to(torch.int64)
        paged = self._paging(block_table, lengths, N, P)
        pos = lambda b, q: q + lengths[b] - L                       # p_i = K_b − L + i

        parts = [lambda b, h, q, kv: kv < lengths[b]]
        if is_causal:
            parts.append(lambda b, h, q, kv: kv <= pos(b, q))
        if window is not None:
            left, right = window
            if left is not None:
                parts.append(lambda b, h, q, kv: kv - pos(b, q) >= -left)
            if right is not None:
                parts.append(lambda b, h, q, kv: kv - pos(b, q) <= right)
        if chunk is not None:   # Llama 4's chunked mask: the same chunk, and causal (sdpa.opt.chunk)
            parts.append(lambda b, h, q, kv: (kv // chunk == pos(b, q) // chunk) & (kv <= pos(b, q)))

        def mask_mod(b, h, q, kv):
            result = parts[0](b, h, q, kv)
            for part in parts[1:]:
                result = result & part(b, h, q, kv)
            return result

        slopes = None
        if alibi_slopes is not None:
            slopes = alibi_slopes.reshape((1, H) if alibi_slopes.ndim == 1 else (B, H)).expand(B, H)

        def score_mod(s, b, h, q, kv):
            if softcap is not None:
                s = softcap * (s / softcap).tanh()
            if slopes is not None:   # FlashAttention's ALiBi: −m·|p_i − j|
                s = s - slopes[b, h] * (pos(b, q) - kv).abs()
            return s

        logical = create_block_mask(mask_mod, B, None, L, M * P, device=str(query.device), BLOCK_SIZE=(128, P))
        block_mask = paged.convert_logical_block_mask(logical, kv_len=lengths)
        pool_k = key_pages.permute(2, 0, 1, 3).reshape(1, Hkv, N * P, E)          # row n·P + s
        pool_v = value_pages.permute(2, 0, 1, 3).reshape(1, Hkv, N * P, value_pages.shape[-1])
        mods = softcap is not None or slopes is not None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
            out, aux = flex_attention(query, pool_k, pool_v, block_mask=block_mask,
                                      score_mod=paged.get_score_mod(score_mod, lengths) if mods else None,
                                      scale=scale, enable_gqa=H != Hkv, return_aux=AuxRequest(lse=True))
        lse = aux.lse
        if sinks is not None:   # HF's flex recipe for gpt-oss sinks
            sink = sinks.reshape(1, H, 1).to(lse.dtype).expand(B, H, L)
            total = torch.logaddexp(lse, sink)
            out = out * torch.exp(lse - total).unsqueeze(-1).to(out.dtype)
            lse = total
        return out, lse if query.dtype == torch.float64 else lse.to(torch.float32)   # paged.dtype


ADAPTERS = (TorchFlexPagedAdapter,)
