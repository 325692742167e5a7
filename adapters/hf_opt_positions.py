"""`hf-opt-positions`: HF transformers' OPT learned positional embedding (torch),
`OPTLearnedPositionalEmbedding`: positions (cumsum(mask)·mask − 1)[:, cache_length:] looked up at
row position + 2 (its `offset`) of an nn.Embedding(num_embeddings + 2, D).

transformers and torch are imported inside methods only; nothing is loaded from a hub.

Border translations (none repairs OPT's rule):
- position_ids (scheme `opt`): the module returns embeddings, not ids, so it is given the identity
  table (row r holds r, float64: exact) and the rows it read come back as its output; past_length ↔
  cache_length (what OPTDecoder passes), the mask (B, past_length + T) as OPT takes it;
- position_embedding(table, ids): the module's rows are the caller's table (N = num_embeddings + 2),
  and OPT's own position_ids argument is offset-free (forward looks up position_ids + offset), so the
  spec's row ids go in as ids − 2. Ids outside [0, N) reach nn.Embedding as they are (it raises).
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require, shape_of
from attnconf.adapters.hf_base import HfTransformers
from attnconf.dtypes import DTYPE_NAMES


class HfOptPositionsAdapter(HfTransformers, Adapter):
    name = "hf-opt-positions"
    description = ("transformers OPTLearnedPositionalEmbedding (positions cumsum(mask)·mask − 1 "
                   "after the past, read at offset 2)")
    capabilities = Capabilities(operations=("position_ids", "position_embedding"), dtypes=DTYPE_NAMES,
                                position_id_schemes=("opt",))

    hf_modules = ("transformers.models.opt.modeling_opt",)

    def _module(self, table):
        import torch
        from transformers.models.opt.modeling_opt import OPTLearnedPositionalEmbedding

        rows, dim = shape_of(table)
        require(rows >= 2, f"OPT's table has num_embeddings + 2 rows (its offset), not {rows}")
        module = OPTLearnedPositionalEmbedding(rows - 2, dim)
        module.weight = torch.nn.Parameter(table, requires_grad=False)
        return module

    def position_ids(self, attention_mask, *, scheme, past_length=0, padding_idx=1):
        import torch

        require(scheme == "opt", f"OPT computes the opt scheme only, not {scheme!r}")
        width = shape_of(attention_mask)[1]
        rows = torch.arange(width + 2, dtype=torch.float64, device=attention_mask.device)[:, None]
        with torch.no_grad():
            read = self._module(rows)(attention_mask, cache_length=int(past_length))
        return read[..., 0].to(torch.long)

    def position_embedding(self, table, position_ids):
        import torch

        module = self._module(table)
        with torch.no_grad():
            # OPT's position_ids are offset-free: forward reads row position_ids + offset
            return module(None, position_ids=position_ids - module.offset)
