"""`torch-flex-varlen`: PyTorch FlexAttention with a document mask, the packed form FlexAttention's
users write (the "document masking / jagged sequences" recipe of the FlexAttention announcement):
the whole packed batch is one sequence (B = 1, L = total_q, S = total_k) and a `mask_mod` over a
document-id vector lets a query see only the keys of its own document, judged as `sdpa_varlen`
(spec/varlen.md).

Eager (`flex_attention` without torch.compile): on this CPU build it takes FlexAttention's unfused
path, which materialises the (total_q, total_k) scores, applies score_mod and then mask_mod, and
costs milliseconds a call. torch.compile(flex_attention) also runs here (a C++ kernel, ~30 s per
first compile, one compile per shape and closure; see adapters/torch_flex.py), so the compiled
kernel is left to `torch-flex-compiled`'s measurements; this row is eager and opt-in.

Border translations (none repairs FlexAttention's numerics): per packed row, its document (−1 for
query padding, −2 for key padding: never equal), the query's position p_i in its document
(i + S_b − L_b bottom-right, or i) and the key's index j in its document, all as int64 vectors the
mask_mod indexes; the causal rule j ≤ p_i and the window −left ≤ j − p_i ≤ right are written in
the mask_mod, soft-capping in a score_mod; GQA by FlexAttention's enable_gqa; the LSE is its
return_aux=AuxRequest(lse=True) (1, H, total_q), transposed; sinks by HF transformers' LSE
renormalisation (out · exp(lse − logsumexp(lse, sink)), as adapters/torch_flex.py).
torch is imported inside functions only.
"""
from __future__ import annotations

import warnings

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities
from attnconf.adapters.pytorch import TorchArrays
from attnconf.adapters.torch_flex import TorchFlexAdapter
from attnconf.dtypes import DTYPE_NAMES


def document_vectors(cu_q, cu_k, total_q: int, total_k: int, alignment: str):
    """(doc_q, pos_q, doc_k, idx_k) int64 NumPy vectors: each packed row's document, each query's
    position p_i in its document, each key's index j in its document (padding: docs −1 / −2)."""
    cq, ck = np.asarray(cu_q, np.int64), np.asarray(cu_k, np.int64)
    doc_q, pos_q = np.full(total_q, -1, np.int64), np.zeros(total_q, np.int64)
    doc_k, idx_k = np.full(total_k, -2, np.int64), np.zeros(total_k, np.int64)
    for b in range(cq.size - 1):
        lb, sb = cq[b + 1] - cq[b], ck[b + 1] - ck[b]
        doc_q[cq[b]:cq[b + 1]] = b
        pos_q[cq[b]:cq[b + 1]] = np.arange(lb) + (sb - lb if alignment == "bottom_right" else 0)
        doc_k[ck[b]:ck[b + 1]] = b
        idx_k[ck[b]:ck[b + 1]] = np.arange(sb)
    return doc_q, pos_q, doc_k, idx_k


class TorchFlexVarlenAdapter(TorchArrays, Adapter):
    name = "torch-flex-varlen"
    description = ("torch.nn.attention.flex_attention, eager, one packed sequence with a document-id "
                   "mask_mod; LSE from return_aux")
    capabilities = Capabilities(operations=("sdpa_varlen",), dtypes=DTYPE_NAMES,
                                causal_alignments=("top_left", "bottom_right"))
    varlen_options = ("window", "softcap", "sinks")

    availability = TorchFlexAdapter.availability

    def sdpa_varlen(self, query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                    is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False,
                    window=None, softcap=None, sinks=None):
        import torch
        from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention

        tq, tk, h = query.shape[0], key.shape[0], query.shape[1]
        vecs = document_vectors(cu_seqlens_q.cpu().numpy(), cu_seqlens_k.cpu().numpy(), tq, tk, causal_alignment)
        doc_q, pos_q, doc_k, idx_k = (torch.from_numpy(x).to(query.device) for x in vecs)
        left, right = (None, None) if window is None else window

        def mask_mod(b, hh, q_idx, kv_idx):
            keep = doc_q[q_idx] == doc_k[kv_idx]
            rel = idx_k[kv_idx] - pos_q[q_idx]          # j − p_i within the document
            if is_causal:
                keep = keep & (rel <= 0)
            if left is not None:
                keep = keep & (rel >= -left)
            if right is not None:
                keep = keep & (rel <= right)
            return keep

        def cap(score, b, hh, q_idx, kv_idx):
            return softcap * torch.tanh(score / softcap)

        block_mask = create_block_mask(mask_mod, 1, None, tq, tk, device=query.device)
        q, k, v = (x.transpose(0, 1).unsqueeze(0) for x in (query, key, value))   # (1, H, total, E)
        with torch.no_grad(), warnings.catch_warnings():
            # eager flex_attention warns on every call that it is not compiled: that is the choice here
            warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
            out, aux = flex_attention(q, k, v, score_mod=None if softcap is None else cap, block_mask=block_mask,
                                      scale=scale, enable_gqa=q.shape[1] != k.shape[1],
                                      return_aux=AuxRequest(lse=True))
        out, lse = out[0].transpose(0, 1), aux.lse[0].transpose(0, 1)        # (total_q, H, Ev), (total_q, H)
        if sinks is not None:    # HF's flex recipe for gpt-oss sinks (adapters/torch_flex.py)
            sink = sinks.reshape(1, h).to(lse.dtype).expand(tq, h)
            combined = torch.logsumexp(torch.stack([lse, sink], dim=-1), dim=-1)
            out = out * torch.exp(lse - combined).unsqueeze(-1).to(out.dtype)
            lse = combined
        return out, lse
