"""`torch-nested`: PyTorch jagged nested tensors into `scaled_dot_product_attention`, the packed
form PyTorch offers (`torch.nested.nested_tensor_from_jagged(values, offsets)`, layout
torch.jagged), judged as `sdpa_varlen` (spec/varlen.md).

On CPU (torch 2.13) the jagged SDPA takes its math path (torch/nested/_internal/sdpa.py,
jagged_scaled_dot_product_attention: the flash and efficient kernels need CUDA), which converts
the jagged tensors to strided nested tensors and runs `_scaled_dot_product_attention_math` per
sequence. What it cannot do is declared, never worked around (tests/test_varlen_adapters.py pins
each): is_causal=True raises "Nested tensors for query / key are not supported when
is_causal=True" (no viable backend), enable_gqa with H != Hkv fails in the nested matmul, and no
LSE is returned (the math path returns the attention weights, not logsumexp): lse is None, an
optional output of sdpa_varlen.

Border translations: cu_seqlens become the jagged offsets (int64, torch's index dtype); rows after
cu_seqlens[B] belong to no sequence and are not passed (the output buffer holds 0 there, the
spec's padding rows, as FlashAttention callers allocate it); (total, H, E) values are viewed as
(B, j, H, E) and transposed to (B, H, j, E) for SDPA, as PyTorch's nested-tensor tutorial does.
torch is imported inside functions only.
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.pytorch import TorchArrays
from attnconf.dtypes import DTYPE_NAMES


class TorchNestedAdapter(TorchArrays, Adapter):
    name = "torch-nested"
    description = ("torch.nn.functional.scaled_dot_product_attention on jagged nested tensors "
                   "(nested_tensor_from_jagged, math path on CPU); no causal, no GQA, no LSE")
    capabilities = Capabilities(operations=("sdpa_varlen",), dtypes=DTYPE_NAMES, causal_alignments=(),
                                gqa=False)
    varlen_options = ()
    varlen_alignments = ()   # is_causal raises on CPU (it would be top-left, pytorch #108108)

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        if not available:
            return available, reason
        try:
            import torch

            torch.nested.nested_tensor_from_jagged  # noqa: B018
        except Exception as exc:
            return False, f"torch.nested.nested_tensor_from_jagged is not available: {type(exc).__name__}: {exc}"
        return True, ""

    def sdpa_varlen(self, query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                    is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False):
        import torch
        import torch.nn.functional as F

        require(not is_causal, "jagged nested SDPA raises for is_causal=True on CPU (no viable backend)")
        require(query.shape[1] == key.shape[1], "jagged nested SDPA cannot broadcast key/value heads (H != Hkv)")
        cq, ck = cu_seqlens_q.to(torch.int64), cu_seqlens_k.to(torch.int64)
        nq, nk = int(cq[-1]), int(ck[-1])
        q = torch.nested.nested_tensor_from_jagged(query[:nq], cq)
        k = torch.nested.nested_tensor_from_jagged(key[:nk], ck)
        v = torch.nested.nested_tensor_from_jagged(value[:nk], ck)
        with torch.no_grad():
            out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                 scale=scale).transpose(1, 2)
        full = torch.zeros(query.shape[0], query.shape[1], value.shape[2], dtype=out.dtype, device=query.device)
        full[:nq] = out.values()
        return full, None
