"""`hf-bloom-alibi`: HF transformers' BLOOM ALiBi, `build_alibi_tensor(attention_mask, num_heads,
dtype)` (torch), the fairseq form: bias m·j added to every query row (a per-row constant away from
the paper's −m·(i − j): the same softmax, not the same bias tensor).

transformers and torch are imported inside methods only; nothing is loaded from a hub.

Border translations (none repairs BLOOM's float32 slopes):
- the attention mask is all ones over the S keys, so BLOOM's padding-aware positions
  (cumsum(mask) − 1)·mask are the plain key indices j;
- alibi_bias: the (H, 1, S) result (batch 1) is broadcast over the L query rows, as BLOOM's
  attention broadcasts it; the bias does not depend on the query, so both alignments give it;
- alibi_slopes: BLOOM's slopes are not public on their own (`_get_alibi_slopes` is private), so they
  are read from build_alibi_tensor with two keys: column j = 1 is m·1 = m, exact in its float32;
- max_bias is fixed at 8 in BLOOM (2^(−8k/n)): any other value is unsupported.
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.hf_base import HfTransformers
from attnconf.adapters.pytorch import native_dtype
from attnconf.dtypes import DTYPE_NAMES


class HfBloomAlibiAdapter(HfTransformers, Adapter):
    name = "hf-bloom-alibi"
    description = "transformers BLOOM build_alibi_tensor (row-constant ALiBi m·j, max_bias 8)"
    capabilities = Capabilities(operations=("alibi_slopes", "alibi_bias"), dtypes=DTYPE_NAMES,
                                alibi_modes=("row_constant",), alibi_alignments=("top_left", "bottom_right"))

    hf_modules = ("transformers.models.bloom.modeling_bloom",)

    def _alibi(self, num_heads, key_length, max_bias, dtype):
        """build_alibi_tensor over S keys of one unpadded sequence: (H, 1, S)."""
        import torch
        from transformers.models.bloom.modeling_bloom import build_alibi_tensor

        require(float(max_bias) == 8.0, f"BLOOM's slopes use max_bias 8 only (2^(-8k/n)), not {max_bias}")
        mask = torch.ones((1, int(key_length)), dtype=torch.long, device=self._device())
        return build_alibi_tensor(mask, int(num_heads), native_dtype(dtype))

    def alibi_slopes(self, num_heads, *, max_bias=8.0, dtype="float32"):
        return self._alibi(num_heads, 2, max_bias, dtype)[:, 0, 1].clone()

    def alibi_bias(self, num_heads, query_length, key_length, *, max_bias=8.0, mode="causal",
                   alignment="bottom_right", dtype="float32"):
        require(mode == "row_constant", f"BLOOM's ALiBi is the row-constant form m·j only, not mode {mode!r}")
        alibi = self._alibi(num_heads, key_length, max_bias, dtype)
        return alibi.expand(int(num_heads), int(query_length), int(key_length)).clone()
