"""`hf-roberta-positions`: HF transformers' RoBERTa position ids (torch),
`RobertaEmbeddings.create_position_ids_from_input_ids(input_ids, padding_idx, cache_length)`:
(cumsum(input_ids ≠ padding_idx) + cache_length)·mask + padding_idx, fairseq's make_positions.

transformers and torch are imported inside methods only; nothing is loaded from a hub.

Border translations (none repairs RoBERTa's rule):
- the spec's attention_mask covers the past and the current tokens, (B, past_length + T); RoBERTa
  sees only the current tokens' input_ids, so the mask's last T columns become input_ids: padding_idx
  where the mask is 0 and padding_idx + 1 (any other id) where it is 1;
- past_length ↔ cache_length (what RobertaEmbeddings.forward passes).
Only the `roberta` scheme is RoBERTa's; the others are unsupported.
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.hf_base import HfTransformers
from attnconf.dtypes import DTYPE_NAMES


class HfRobertaPositionsAdapter(HfTransformers, Adapter):
    name = "hf-roberta-positions"
    description = ("transformers RobertaEmbeddings.create_position_ids_from_input_ids "
                   "(position ids from padding_idx + 1; past_length = cache_length)")
    capabilities = Capabilities(operations=("position_ids",), dtypes=DTYPE_NAMES,
                                position_id_schemes=("roberta",))

    hf_modules = ("transformers.models.roberta.modeling_roberta",)

    def position_ids(self, attention_mask, *, scheme, past_length=0, padding_idx=1):
        import torch
        from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

        require(scheme == "roberta", f"RoBERTa computes the roberta scheme only, not {scheme!r}")
        past = int(past_length)
        current = attention_mask[:, past:]
        pad = int(padding_idx)
        input_ids = torch.where(current != 0, torch.full_like(current, pad + 1), torch.full_like(current, pad))
        return RobertaEmbeddings.create_position_ids_from_input_ids(input_ids, pad, cache_length=past)
