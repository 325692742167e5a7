"""`torch-math-masks`: `F.scaled_dot_product_attention` on its MATH backend with the sdpa kernel
options it can take, expressed as its `attn_mask` the way HF transformers' sdpa path and most
PyTorch users express them; forward and gradients (torch autograd through the math backend).

Border translations (none repairs PyTorch's numerics):
- positions p_i (spec sdpa.opt.positions): query_offset[b] + i, else i + K_b − L (bottom_right,
  K_b = key_lengths[b] or S), else i;
- causal rule, window (−left ≤ j − p_i ≤ right) and key lengths (j < key_lengths[b]) become one
  boolean visibility (B, 1, L, S), intersected with a boolean attn_mask; is_causal itself is not
  passed (torch's is_causal is top-left and cannot be combined with a mask on the math path);
- ALiBi slopes become a float bias −m·|p_i − j| in the query's dtype (as HF's BLOOM / Falcon
  build it), added to a float attn_mask, with −∞ where the visibility hides a key.
Soft-capping and sinks have no expression in F.scaled_dot_product_attention (the logits are never
exposed), and padded query rows are computed as ordinary rows: softcap, sinks and query_lengths are
not claimed. torch is imported inside functions only.
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.pytorch import TorchArrays, vjp
from attnconf.dtypes import DTYPE_NAMES


def _positions(B, L, S, causal_alignment, query_offset, key_lengths, device):
    import torch

    i = torch.arange(L, device=device)
    if query_offset is not None:
        return query_offset.to(torch.int64)[:, None] + i
    if causal_alignment == "bottom_right":
        keys = key_lengths.to(torch.int64) if key_lengths is not None else torch.full((B,), S, device=device)
        return (keys - L)[:, None] + i
    return i.expand(B, L)


def options_mask(query, key, attn_mask, is_causal, causal_alignment, window=None, alibi_slopes=None,
                 query_offset=None, key_lengths=None):
    """The attn_mask carrying the options: bool (B, 1, L, S) visibility, or a float mask of
    query's dtype when ALiBi or a float attn_mask is involved."""
    import torch

    B, H, L, _ = query.shape
    S = key.shape[-2]
    pos = _positions(B, L, S, causal_alignment, query_offset, key_lengths, query.device)
    rel = torch.arange(S, device=query.device)[None, None, :] - pos[:, :, None]      # j − p_i (B, L, S)
    vis = torch.ones_like(rel, dtype=torch.bool)
    if is_causal:
        vis &= rel <= 0
    if window is not None:
        left, right = window
        if left is not None:
            vis &= rel >= -left
        if right is not None:
            vis &= rel <= right
    if key_lengths is not None:
        vis &= torch.arange(S, device=query.device)[None, None, :] < key_lengths.to(torch.int64)[:, None, None]
    vis = vis[:, None]
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        vis = vis & attn_mask
    floats = attn_mask is not None and attn_mask.dtype != torch.bool
    if alibi_slopes is None and not floats:
        return vis
    bias = torch.zeros((1, 1, 1, 1), dtype=query.dtype, device=query.device)
    if alibi_slopes is not None:
        m = alibi_slopes.reshape((1, H) if alibi_slopes.ndim == 1 else (B, H))[:, :, None, None].to(query.dtype)
        bias = bias - m * rel.abs()[:, None].to(query.dtype)
    if floats:
        bias = bias + attn_mask
    return bias.masked_fill(~vis, float("-inf"))


class TorchMathMasksAdapter(TorchArrays, Adapter):
    name = "torch-math-masks"
    description = ("F.scaled_dot_product_attention, MATH backend, with window, key lengths, decode "
                   "offsets and ALiBi as its attn_mask (HF's sdpa-path recipe); gradients by autograd")
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp"), dtypes=DTYPE_NAMES, causal_alignments=("top_left", "bottom_right"),
        mask_and_causal=True, gradients=True,
        sdpa_options=("window", "alibi_slopes", "query_offset", "key_lengths"),
    )

    def _call(self, query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa, options):
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel

        require(query.ndim == 4, "attnconf passes 4-D (B, H, L, E) tensors")
        mask = options_mask(query, key, attn_mask, is_causal, causal_alignment, **options)
        with sdpa_kernel([SDPBackend.MATH]):
            return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale,
                                                  enable_gqa=enable_gqa)

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False, causal_alignment="top_left",
             scale=None, enable_gqa=False, **options):
        import torch

        with torch.no_grad():
            return self._call(query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa, options)

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        return vjp(lambda q, k, v: self._call(q, k, v, attn_mask, is_causal, causal_alignment, scale,
                                              enable_gqa, options), (query, key, value), grad_output)


ADAPTERS = (TorchMathMasksAdapter,)
