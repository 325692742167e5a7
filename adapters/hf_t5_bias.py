"""`hf-t5-bias`: HF transformers' T5 relative attention bias (torch): the static
`T5Attention._relative_position_bucket` for bucket ids and `T5Attention.compute_bias` for the bias.

Nothing is loaded from a hub: one T5Attention per (heads, buckets, max_distance, direction) is built
from a small in-memory `T5Config` (d_kv 1, d_model = heads) and its `relative_attention_bias`
embedding takes the caller's table. transformers and torch are imported inside methods only.

Border translations (none repairs T5's numerics or its float32 log):
- bidirectional ↔ `not config.is_decoder` (compute_bias passes bidirectional=(not self.is_decoder));
- query_offset ↔ `past_seen_tokens` (compute_bias: context position = arange(L) + past_seen_tokens,
  memory position = arange(S): the same top-left offset alignment as the spec's j − (i + query_offset));
- relative_position_bucket: the relative positions memory − context are built here as compute_bias
  builds them (torch.long aranges), then handed to `_relative_position_bucket` unchanged;
- the (1, H, L, S) bias loses its leading batch axis.
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, shape_of
from attnconf.adapters.hf_base import HfTransformers
from attnconf.dtypes import DTYPE_NAMES


class HfT5BiasAdapter(HfTransformers, Adapter):
    name = "hf-t5-bias"
    description = ("transformers T5Attention._relative_position_bucket and compute_bias "
                   "(bidirectional = encoder, causal = decoder; query_offset = past_seen_tokens)")
    capabilities = Capabilities(operations=("relative_position_bucket", "relative_position_bias"),
                                dtypes=DTYPE_NAMES)

    def __init__(self, device=None):
        super().__init__(device)
        self._modules = {}  # (H, num_buckets, max_distance, bidirectional, dtype) -> T5Attention

    hf_modules = ("transformers.models.t5.modeling_t5",)

    def relative_position_bucket(self, query_length, key_length, *, bidirectional=True, num_buckets=32,
                                 max_distance=128, query_offset=0):
        import torch
        from transformers.models.t5.modeling_t5 import T5Attention

        device = self._device()
        # as compute_bias builds them: memory_position - (arange(L) + past_seen_tokens)
        context = torch.arange(int(query_length), dtype=torch.long, device=device)[:, None] + int(query_offset)
        memory = torch.arange(int(key_length), dtype=torch.long, device=device)[None, :]
        return T5Attention._relative_position_bucket(memory - context, bidirectional=bool(bidirectional),
                                                     num_buckets=int(num_buckets),
                                                     max_distance=int(max_distance))

    def relative_position_bias(self, table, query_length, key_length, *, bidirectional=True, num_buckets=32,
                               max_distance=128, query_offset=0):
        import torch

        heads = shape_of(table)[-1]  # (num_buckets, H): a table of other rows fails copy_ below
        module = self._module(heads, int(num_buckets), int(max_distance), bool(bidirectional), table.dtype)
        with torch.no_grad():
            module.relative_attention_bias.weight.copy_(table)
            bias = module.compute_bias(int(query_length), int(key_length), device=table.device,
                                       past_seen_tokens=int(query_offset))
        return bias[0]

    def _module(self, heads, num_buckets, max_distance, bidirectional, dtype):
        key = (heads, num_buckets, max_distance, bidirectional, dtype)
        if key not in self._modules:
            from transformers import T5Config
            from transformers.models.t5.modeling_t5 import T5Attention

            config = T5Config(d_model=heads, d_kv=1, d_ff=1, num_heads=heads, num_layers=1,
                              relative_attention_num_buckets=num_buckets,
                              relative_attention_max_distance=max_distance, is_decoder=not bidirectional)
            module = T5Attention(config, has_relative_attention_bias=True, layer_idx=0)
            self._modules[key] = module.to(device=self._device(), dtype=dtype).eval()
        return self._modules[key]
