"""`torch-flex`: PyTorch FlexAttention (`torch.nn.attention.flex_attention`), every SDPA option
expressed the way FlexAttention users write it: a `score_mod` for soft-capping, the float mask and
ALiBi, a `mask_mod` (one `create_block_mask`) for causal, window, bool mask and ragged lengths.

Eager, not compiled. On this CPU build (torch 2.13.0+cpu, g++ present) both run: eager
flex_attention takes FlexAttention's own unfused path (it warns "called without torch.compile()",
materialises the scores, applies score_mod then mask_mod exactly as the compiled kernel's
semantics say) and costs milliseconds a call; torch.compile(flex_attention) generates a C++ kernel
and took 30 s for its first call here, and recompiles for every new shape, dtype and closure, so a
compiled row would cost minutes per run. The compiled kernel is opt-in: `torch-flex-compiled`.

Border translations (none repairs FlexAttention's numerics):
- positions: p_i = query_offset[b] + i (decode), i + (K_b − L_b) (bottom_right), or i, computed in
  the mods from q_idx, as a FlexAttention user writes a decode or bottom-right mask;
- window (left, right) of the spec is the mask −left ≤ kv_idx − p_i ≤ right (no convention of
  FlexAttention's own: it has no window argument); chunk C is the mask kv_idx // C == p_i // C
  and kv_idx ≤ p_i, as HF's chunked_causal_mask_function writes Llama 4's;
- sinks: FlexAttention has none; applied by the LSE renormalisation HF transformers' flex
  integration uses for gpt-oss (out · exp(lse) / (exp(lse) + exp(sink)), from return_aux lse);
- query_lengths: padded rows see no key (mask_mod), and FlexAttention's fully-masked rows give 0;
- a float attn_mask is added in score_mod after the soft-cap, a bool one is part of mask_mod.
torch is imported inside functions only.
"""
from __future__ import annotations

import warnings

from attnconf.adapters.base import Adapter, Capabilities, importable, require
from attnconf.adapters.pytorch import TorchArrays, vjp
from attnconf.dtypes import DTYPE_NAMES
from attnconf.operations.sdpa import OPTION_NAMES


def _as4d(x, shape):
    """A mask or bias broadcast to the full (B, H, L, S), so the mods can index it by (b, h, q, kv)."""
    return x.reshape((1,) * (4 - x.ndim) + tuple(x.shape)).expand(*shape)


def _positions(B, L, S, causal_alignment, query_offset, key_lengths, query_lengths):
    """p(b, q): the query's absolute position (spec sdpa.opt.positions) as a function of indices."""
    import torch

    if query_offset is not None:
        offset = query_offset.to(torch.int64)
    elif causal_alignment == "bottom_right":
        keys = key_lengths.to(torch.int64) if key_lengths is not None else torch.full((B,), S)
        rows = query_lengths.to(torch.int64) if query_lengths is not None else torch.full((B,), L)
        offset = keys - rows
    else:
        return lambda b, q: q
    return lambda b, q: q + offset[b]


def _mods(shape, S, attn_mask, is_causal, pos, window, softcap, alibi_slopes, key_lengths,
          query_lengths, chunk=None):
    """(score_mod or None, mask_mod or None) for one call."""
    B, H, L = shape[0], shape[1], shape[2]
    full = (B, H, L, S)
    bias = None if attn_mask is None or attn_mask.dtype == _bool() else _as4d(attn_mask, full)
    keep = None if attn_mask is None or attn_mask.dtype != _bool() else _as4d(attn_mask, full)
    slopes = None
    if alibi_slopes is not None:
        slopes = alibi_slopes.reshape((1, H) if alibi_slopes.ndim == 1 else (B, H)).expand(B, H)

    score_parts = []
    if softcap is not None:
        c = float(softcap)
        score_parts.append(lambda s, b, h, q, kv: c * (s / c).tanh())
    if bias is not None:
        score_parts.append(lambda s, b, h, q, kv: s + bias[b, h, q, kv])
    if slopes is not None:  # FlashAttention's ALiBi: −m·|p_i − j|
        score_parts.append(lambda s, b, h, q, kv: s - slopes[b, h] * (pos(b, q) - kv).abs())

    mask_parts = []
    if keep is not None:
        mask_parts.append(lambda b, h, q, kv: keep[b, h, q, kv])
    if is_causal:
        mask_parts.append(lambda b, h, q, kv: kv <= pos(b, q))
    if window is not None:
        left, right = window
        if left is not None:
            mask_parts.append(lambda b, h, q, kv: kv - pos(b, q) >= -left)
        if right is not None:
            mask_parts.append(lambda b, h, q, kv: kv - pos(b, q) <= right)
    if chunk is not None:   # Llama 4's chunked mask: the same chunk, and causal (sdpa.opt.chunk)
        mask_parts.append(lambda b, h, q, kv: (kv // chunk == pos(b, q) // chunk) & (kv <= pos(b, q)))
    if key_lengths is not None:
        mask_parts.append(lambda b, h, q, kv: kv < key_lengths[b])
    if query_lengths is not None:
        mask_parts.append(lambda b, h, q, kv: q < query_lengths[b])

    def score_mod(s, b, h, q, kv):
        for part in score_parts:
            s = part(s, b, h, q, kv)
        return s

    def mask_mod(b, h, q, kv):
        result = mask_parts[0](b, h, q, kv)
        for part in mask_parts[1:]:
            result = result & part(b, h, q, kv)
        return result

    return (score_mod if score_parts else None), (mask_mod if mask_parts else None)


def _bool():
    import torch

    return torch.bool


class TorchFlexAdapter(TorchArrays, Adapter):
    name = "torch-flex"
    compiled = False
    description = ("torch.nn.attention.flex_attention, eager (FlexAttention's unfused path): options "
                   "as score_mod / mask_mod, sinks by LSE renormalisation")
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp", "sdpa_lse"), dtypes=DTYPE_NAMES,
        causal_alignments=("top_left", "bottom_right"), gradients=True, sdpa_options=OPTION_NAMES,
    )

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        return importable("torch.nn.attention.flex_attention") if available else (available, reason)

    def _flex(self):
        from torch.nn.attention.flex_attention import flex_attention

        if not self.compiled:
            return flex_attention
        import torch

        return torch.compile(flex_attention, dynamic=False)

    def _call(self, query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa,
              window=None, softcap=None, sinks=None, alibi_slopes=None, query_offset=None,
              key_lengths=None, query_lengths=None, chunk=None, want_lse=False):
        import torch
        from torch.nn.attention.flex_attention import AuxRequest, create_block_mask

        require(query.ndim == 4, "attnconf passes 4-D (B, H, L, E) tensors")
        B, H, L, _ = query.shape
        S = key.shape[-2]
        pos = _positions(B, L, S, causal_alignment, query_offset, key_lengths, query_lengths)
        score_mod, mask_mod = _mods(query.shape, S, attn_mask, is_causal, pos, window, softcap,
                                    alibi_slopes, key_lengths, query_lengths, chunk)
        block_mask = None
        if mask_mod is not None:
            block_mask = create_block_mask(mask_mod, B, H, L, S, device=query.device)
        kwargs = dict(score_mod=score_mod, block_mask=block_mask, scale=scale,
                      enable_gqa=query.shape[1] != key.shape[1])
        with warnings.catch_warnings():
            # eager flex_attention warns on every call that it is not compiled: that is the choice here
            warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
            if sinks is None and not want_lse:
                return self._flex()(query, key, value, **kwargs)
            out, aux = self._flex()(query, key, value, return_aux=AuxRequest(lse=True), **kwargs)
        if sinks is None:
            return out, aux.lse
        # HF's flex recipe for gpt-oss sinks: renormalise by exp(lse) / (exp(lse) + exp(sink)).
        lse = aux.lse.unsqueeze(-1).to(out.dtype)
        sink = sinks.reshape(1, H, 1, 1).to(out.dtype).expand(B, H, L, 1)
        combined = torch.logsumexp(torch.cat([lse, sink], dim=-1), dim=-1, keepdim=True)
        out = out * torch.exp(lse - combined)
        if not want_lse:
            return out
        # the LSE of the same recipe: the sink's exp joins the denominator (sdpa.lse.sinks), in
        # FlexAttention's own LSE dtype (float32 below float64), not rounded to the output's
        sink = sinks.reshape(1, H, 1).to(aux.lse.dtype).expand(B, H, L)
        lse = torch.logsumexp(torch.stack([aux.lse, sink]), dim=0)
        if query_lengths is not None:
            # padded rows are this adapter's (FlexAttention has none: they are rows with no key
            # here), so the sink recipe must not give them the sink's LSE (sdpa.lse.padded)
            padded = torch.arange(L, device=lse.device)[None, :] >= query_lengths.to(torch.int64)[:, None]
            lse = lse.masked_fill(padded[:, None, :], float("-inf"))
        return out, lse

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        import torch

        with torch.no_grad():
            return self._call(query, key, value, attn_mask, is_causal, causal_alignment, scale,
                              enable_gqa, **options)

    def sdpa_lse(self, query, key, value, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        """FlexAttention's `return_aux=AuxRequest(lse=True)` LSE beside its output."""
        import torch

        with torch.no_grad():
            return self._call(query, key, value, attn_mask, is_causal, causal_alignment, scale,
                              enable_gqa, want_lse=True, **options)

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, sinks=None, **options):
        """Autograd through the mods (FlexAttention differentiates score_mod: the soft-cap's slope
        comes from autograd of c·tanh(s/c)); with sinks, also through the LSE renormalisation,
        which gives dsinks (spec sdpa.opt.grad: outputs (dq, dk, dv, dsinks))."""
        if sinks is None:
            return vjp(lambda q, k, v: self._call(q, k, v, attn_mask, is_causal, causal_alignment,
                                                  scale, enable_gqa, **options),
                       (query, key, value), grad_output)
        return vjp(lambda q, k, v, s: self._call(q, k, v, attn_mask, is_causal, causal_alignment,
                                                 scale, enable_gqa, sinks=s, **options),
                   (query, key, value, sinks), grad_output)


class TorchFlexCompiledAdapter(TorchFlexAdapter):
    name = "torch-flex-compiled"
    compiled = True
    description = ("torch.compile(flex_attention): the generated kernel (C++ on CPU); opt-in, each new "
                   "shape, dtype or closure compiles for tens of seconds")


ADAPTERS = (TorchFlexAdapter, TorchFlexCompiledAdapter)
