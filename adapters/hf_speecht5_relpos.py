"""`hf-speecht5-relpos`: HF transformers' SpeechT5 clipped relative positions (torch),
`SpeechT5RelativePositionalEncoding(dim, max_length=K)`: the Shaw-style relative key embeddings of
SpeechT5's encoder, pe_k(clip(i − j, −K, K − 1) + K) for a sequence against itself.

transformers and torch are imported inside methods only; nothing is loaded from a hub.

Border translations (none repairs SpeechT5's convention):
- the module returns embeddings, not indices, so its table pe_k (2K rows) is the identity (row r
  holds r, float64: exact) and the rows it read come back as its output;
- it relates a sequence to itself (hidden_states (B, T, D) gives (T, T, D)), so only L = S, where
  the two alignments coincide; L ≠ S is unsupported;
- max_relative_position ↔ max_length. Its index is returned as it is: query − key (not the spec's
  key − query) clipped to [−K, K − 1] (2K rows, not 2K + 1).
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.hf_base import HfTransformers
from attnconf.dtypes import DTYPE_NAMES


class HfSpeechT5RelposAdapter(HfTransformers, Adapter):
    name = "hf-speecht5-relpos"
    description = ("transformers SpeechT5RelativePositionalEncoding (clip(i − j, −K, K − 1) + K, "
                   "a sequence against itself)")
    capabilities = Capabilities(operations=("relative_position_index",), dtypes=DTYPE_NAMES,
                                relative_index_alignments=("top_left", "bottom_right"))

    hf_modules = ("transformers.models.speecht5.modeling_speecht5",)

    def relative_position_index(self, query_length, key_length, *, max_relative_position, alignment="top_left"):
        import torch
        from transformers.models.speecht5.modeling_speecht5 import SpeechT5RelativePositionalEncoding

        length = int(query_length)
        require(length == int(key_length), "SpeechT5's relative encoding relates a sequence to itself (L = S only)")
        k = int(max_relative_position)
        module = SpeechT5RelativePositionalEncoding(1, max_length=k).to(self._device())
        with torch.no_grad():
            module.pe_k.weight = torch.nn.Parameter(
                torch.arange(2 * k, dtype=torch.float64, device=self._device())[:, None], requires_grad=False)
            read = module(torch.zeros((1, length, 1), dtype=torch.float64, device=self._device()))
        return read[..., 0].to(torch.long)
