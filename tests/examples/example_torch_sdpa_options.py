"""A hand-written torch attention with a sliding window, soft-capping and sinks (gpt-oss / Gemma
style): its gradients, sinks included, come from torch autograd when attnconf checks sdpa_vjp.

Run it: attnconf run --sdpa example_torch_sdpa_options:sdpa --framework torch --select 'sdpa_vjp/opt*'
"""
import math

import torch


def sdpa(query, key, value, *, is_causal=False, scale=None, window=None, softcap=None, sinks=None):
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    logits = query @ key.transpose(-2, -1) * scale
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    rel = torch.arange(S)[None, :] - torch.arange(L)[:, None]        # j − i (top-left positions)
    visible = torch.ones(L, S, dtype=torch.bool)
    if is_causal:
        visible &= rel <= 0
    if window is not None:
        left, right = window
        if left is not None:
            visible &= rel >= -left
        if right is not None:
            visible &= rel <= right
    logits = logits.masked_fill(~visible, float("-inf"))
    if sinks is not None:                                           # one extra logit per head, no value
        sink = sinks.reshape(1, -1, 1, 1).expand(*logits.shape[:-1], 1)
        weights = torch.softmax(torch.cat([logits, sink], dim=-1), dim=-1)[..., :-1]
    else:
        fully = (logits == float("-inf")).all(dim=-1, keepdim=True)
        weights = torch.softmax(logits.masked_fill(fully, 0.0), dim=-1).masked_fill(fully, 0.0)
    return weights @ value
