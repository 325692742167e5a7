"""`torch-flash-lse`: PyTorch's CPU flash kernel called for its two results,
`torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, dropout_p,
is_causal, *, attn_mask, scale) -> (output, logsumexp)` — the op `F.scaled_dot_product_attention`
dispatches to on CPU, whose `logsumexp` (B, H, L) float32 for half inputs is what PyTorch's
context parallelism merges.

Border translations (none repairs the kernel's numerics):
- the op takes equal query and key/value heads: GQA (sdpa.gqa) repeats each key/value head G
  times (`repeat_interleave`, what `enable_gqa=True` does in PyTorch's math path);
- the op's `attn_mask` must have the query's dtype: a bool mask becomes 0 / −∞ in that dtype (a
  float mask is passed as is);
- `is_causal` is the op's own (top-left); no sdpa.opt.* option is taken.
torch is imported inside functions only.
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.pytorch import TorchArrays
from attnconf.dtypes import DTYPE_NAMES


class TorchFlashLseAdapter(TorchArrays, Adapter):
    name = "torch-flash-lse"
    description = ("torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: PyTorch's CPU flash "
                   "kernel's (output, logsumexp)")
    # value_dim_differs: the op raises "Q/K/V should have the same head size" when Ev != E
    capabilities = Capabilities(operations=("sdpa_lse",), dtypes=DTYPE_NAMES, causal_alignments=("top_left",),
                                value_dim_differs=False)

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        if not available:
            return available, reason
        import torch

        if not hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
            return False, f"torch {torch.__version__} has no aten::_scaled_dot_product_flash_attention_for_cpu"
        return True, ""

    def device_status(self):
        if self.device != "cpu":
            return False, "torch-flash-lse calls the CPU kernel (device cpu only)"
        return super().device_status()

    def sdpa_lse(self, query, key, value, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        import torch

        require(not options, f"{self.name} takes no sdpa.opt.* option")
        require(causal_alignment == "top_left", "the CPU flash op's causal rule is top-left only")
        require(value.shape[-1] == query.shape[-1], "the CPU flash op takes no Ev != E (same head size)")
        group = query.shape[1] // key.shape[1]
        if group > 1:  # sdpa.gqa: query head h reads key/value head h // G
            key = key.repeat_interleave(group, dim=1)
            value = value.repeat_interleave(group, dim=1)
        if attn_mask is not None and attn_mask.dtype == torch.bool:  # the op wants the query's dtype
            attn_mask = torch.zeros(attn_mask.shape, dtype=query.dtype).masked_fill(~attn_mask, float("-inf"))
        with torch.no_grad():
            out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                query, key, value, 0.0, bool(is_causal), attn_mask=attn_mask, scale=scale)
        return out, lse


ADAPTERS = (TorchFlashLseAdapter,)
