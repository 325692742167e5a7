"""HF transformers' attention functions (torch), called the way a transformers model calls them:
`hf-eager` (Gemma 2's `eager_attention_forward`: Llama's eager path plus `softcap`),
`hf-eager-sinks` (gpt-oss's `eager_attention_forward`: a learned sink logit per head; it declines
the cases without sinks, which hf-eager's path covers) and
`hf-sdpa` (`integrations.sdpa_attention.sdpa_attention_forward`, which calls torch's SDPA).

One file, three classes: they share everything but the forward function: the stand-in module
(the attributes the functions read: num_key_value_groups, head_dim, is_causal, training, sinks) and
the masks, which transformers builds in `masking_utils` the way `create_causal_mask` /
`create_sliding_window_causal_mask` do: `eager_mask` (additive, finfo.min where hidden) for the
eager paths, `sdpa_mask` (bool, or None with is_causal when the pattern allows the skip) for SDPA.
Nothing is loaded from a hub; transformers and torch are imported inside functions only.

Border translations (none repairs transformers' numerics):
- causal with p_i = q_offset + i: `query_offset` (decode) is HF's q_offset, one per call (HF's caches
  share one past length per batch), and bottom_right is q_offset = S − L, as HF's decode step is;
- window: HF knows two patterns: causal `sliding_window` w (keys q − w < kv ≤ q: the spec's
  (w − 1, 0)) and the bidirectional overlay |q − kv| ≤ w (the spec's (w, w), non-causal); other
  windows are unsupported;
- key_lengths: the 2-D padding mask (B, S) that HF models take as `attention_mask`;
- chunk C: Llama 4's `chunked_causal_mask_function` as `create_chunked_causal_mask` builds it
  (`chunked_overlay(C, left_padding)` and causal, local_size C for the SDPA skip), with no left
  padding: chunks count from key 0 (spec sdpa.opt.chunk);
- a canonical bool mask with one head (B or 1, 1, L, S) joins as one more mask function (and_masks);
  a float mask only alone (it is HF's 4-D custom mask, passed through).
"""
from __future__ import annotations

import types

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.hf_base import HfTransformers
from attnconf.dtypes import DTYPE_NAMES


def _window_pattern(window, is_causal):
    """(mask function factory name, size) of HF's window pattern for the spec's (left, right)."""
    left, right = window
    if right == 0 and left is not None:
        return "sliding", left + 1      # HF: kv_idx > q_idx − sliding_window, with causal
    if left is None and right == 0:
        return "causal", None
    require(not is_causal and left is not None and left == right,
            "transformers has causal sliding windows (left, 0) and the bidirectional |q - kv| <= w "
            f"only, not the window {tuple(window)}" + (" with is_causal" if is_causal else ""))
    return "bidirectional", left


def _offset(query_offset, causal_alignment, L, S, key_lengths):
    import torch

    if query_offset is not None:
        offsets = torch.unique(query_offset)
        require(offsets.numel() == 1, "transformers' caches have one past length per call (q_offset), "
                                      "not one per sequence")
        return int(offsets[0])
    if causal_alignment == "bottom_right":
        require(key_lengths is None, "transformers aligns decode rows with the cache end, not with ragged "
                                     "key_lengths (it left-pads)")
        return S - L
    return 0


def hf_mask(kind, query, key, attn_mask, is_causal, causal_alignment, window, query_offset,
            key_lengths, chunk=None):
    """The mask transformers builds for this call: (mask or None, causal flag for sdpa)."""
    import torch
    from transformers import masking_utils as mu

    B, _, L, _ = query.shape
    S = key.shape[-2]
    options = window is not None or query_offset is not None or key_lengths is not None or chunk is not None
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        require(not options and not is_causal,
                "transformers takes a float 4-D mask as is, never combined with its own masks")
        return attn_mask, False
    if attn_mask is not None:
        require(attn_mask.ndim < 3 or attn_mask.shape[-3] == 1,
                "transformers' masks have one head (B, 1, L, S); a per-head bool mask is not one")
    q_offset = _offset(query_offset, causal_alignment, L, S, key_lengths)
    functions, local_size = [mu.causal_mask_function if is_causal else mu.bidirectional_mask_function], None
    if window is not None:
        pattern, size = _window_pattern(window, is_causal)
        if pattern == "sliding":
            functions.append(mu.sliding_window_overlay(size))
            functions[0], local_size = mu.causal_mask_function, size
        elif pattern == "causal":
            functions[0] = mu.causal_mask_function
        else:
            functions.append(mu.sliding_window_bidirectional_overlay(size))
    if chunk is not None:   # create_chunked_causal_mask's function: chunked_overlay and causal, no left padding
        functions[0] = mu.causal_mask_function
        functions.append(mu.chunked_overlay(int(chunk), torch.zeros(B, dtype=torch.int64, device=query.device)))
        local_size = int(chunk) if local_size is None else min(local_size, int(chunk))
    causal = functions[0] is mu.causal_mask_function
    if attn_mask is not None:
        full = attn_mask.reshape((1,) * (4 - attn_mask.ndim) + tuple(attn_mask.shape)).expand(B, 1, L, S)
        functions.append(lambda b, h, q, kv: full[b, 0, q - q_offset, kv])
    padding = None
    if key_lengths is not None:
        padding = torch.arange(S, device=query.device)[None, :] < key_lengths[:, None]
    common = dict(batch_size=B, q_length=L, kv_length=S, q_offset=q_offset, kv_offset=0,
                  mask_function=mu.and_masks(*functions), attention_mask=padding, device=query.device)
    if kind == "eager":
        return mu.eager_mask(dtype=query.dtype, **common), causal
    if causal and attn_mask is None:   # create_causal_mask's path: the is_causal skip where allowed
        return mu.sdpa_mask(local_size=local_size, allow_is_causal_skip=True, **common), True
    return mu.sdpa_mask(allow_is_causal_skip=False, allow_is_bidirectional_skip=attn_mask is None and
                        not options, **common), causal


class _HfAttention(HfTransformers, Adapter):
    mask_kind = "eager"
    capabilities = Capabilities(
        operations=("sdpa",), dtypes=DTYPE_NAMES, causal_alignments=("top_left", "bottom_right"),
        value_dim_differs=True, sdpa_options=("window", "query_offset", "key_lengths", "chunk"),
    )

    hf_modules = ("transformers.masking_utils",)

    @classmethod
    def _hf_check(cls):
        cls._forward()          # the model module's forward function exists in this version

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, window=None, softcap=None,
             sinks=None, query_offset=None, key_lengths=None, chunk=None):
        import torch

        E = query.shape[-1]
        mask, causal = hf_mask(self.mask_kind, query, key, attn_mask, is_causal, causal_alignment, window,
                               query_offset, key_lengths, chunk)
        module = types.SimpleNamespace(num_key_value_groups=query.shape[1] // key.shape[1], head_dim=E,
                                       is_causal=causal, training=False, sinks=sinks)
        kwargs = {} if softcap is None else {"softcap": float(softcap)}
        with torch.no_grad():
            out, _ = self._forward()(module, query, key, value, mask, dropout=0.0,
                                     scaling=self._scaling(scale, E), **kwargs)
        return out.transpose(1, 2)  # HF returns (B, L, H, Ev)

    @staticmethod
    def _scaling(scale, E):
        return scale


class HfEagerAdapter(_HfAttention):
    name = "hf-eager"
    description = ("transformers Gemma 2 eager_attention_forward (Llama's eager path + softcap) with "
                   "masking_utils.eager_mask")
    capabilities = Capabilities(
        operations=("sdpa",), dtypes=DTYPE_NAMES, causal_alignments=("top_left", "bottom_right"),
        sdpa_options=("window", "softcap", "query_offset", "key_lengths", "chunk"),
    )

    @staticmethod
    def _forward():
        from transformers.models.gemma2.modeling_gemma2 import eager_attention_forward

        return eager_attention_forward


class HfEagerSinksAdapter(_HfAttention):
    name = "hf-eager-sinks"
    description = ("transformers gpt-oss eager_attention_forward (sink logit per head) with "
                   "masking_utils.eager_mask")
    capabilities = Capabilities(
        operations=("sdpa",), dtypes=DTYPE_NAMES, causal_alignments=("top_left", "bottom_right"),
        sdpa_options=("window", "sinks", "query_offset", "key_lengths", "chunk"),
    )

    @staticmethod
    def _forward():
        from transformers.models.gpt_oss.modeling_gpt_oss import eager_attention_forward

        return eager_attention_forward

    @staticmethod
    def _scaling(scale, E):
        return E ** -0.5 if scale is None else scale  # gpt-oss passes its self.scaling = head_dim**-0.5

    def sdpa(self, query, key, value, *, sinks=None, **kwargs):
        # Only where a case sets sinks: without them this is the eager path hf-eager already runs
        # (a −inf sink logit), and declining keeps the default run within its time (a skip, not a pass).
        if sinks is None:
            raise NotImplementedError("hf-eager-sinks runs gpt-oss's eager path only where a case sets "
                                      "sinks; hf-eager covers the eager path without them")
        return super().sdpa(query, key, value, sinks=sinks, **kwargs)


class HfSdpaAdapter(_HfAttention):
    name = "hf-sdpa"
    mask_kind = "sdpa"
    description = ("transformers integrations.sdpa_attention.sdpa_attention_forward (torch SDPA) with "
                   "masking_utils.sdpa_mask")

    @staticmethod
    def _forward():
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward


ADAPTERS = (HfEagerAdapter, HfEagerSinksAdapter, HfSdpaAdapter)
