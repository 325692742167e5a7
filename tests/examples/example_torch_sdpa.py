"""A hand-written torch attention that takes no enable_gqa keyword and declares its claims.

Run it: attnconf run --sdpa example_torch_sdpa:sdpa --framework torch   (from this folder)
GQA cases are reported as skipped-unsupported (the keyword is missing), never as passed.
"""
import math

import torch

from attnconf.adapters import declare


@declare(causal_alignment="bottom_right", name="example-torch-sdpa")
def sdpa(query, key, value, *, attn_mask=None, is_causal=False, scale=None):
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    logits = query @ key.transpose(-2, -1) * scale
    if attn_mask is not None:
        logits = logits.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else logits + attn_mask
    if is_causal:  # bottom-right, as declared: key j visible to query i iff j <= i + S - L
        L, S = logits.shape[-2:]
        visible = torch.ones(L, S, dtype=torch.bool, device=logits.device).tril(diagonal=S - L)
        logits = logits.masked_fill(~visible, float("-inf"))
    # fully-masked rows give 0 (canonical); masking before softmax keeps their gradients 0, not NaN
    fully = (logits == float("-inf")).all(dim=-1, keepdim=True)
    weights = torch.softmax(logits.masked_fill(fully, 0.0), dim=-1).masked_fill(fully, 0.0)
    return weights @ value
