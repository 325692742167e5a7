"""`hf-rope`: HF transformers' Llama rotary embedding (torch), `LlamaRotaryEmbedding` for cos/sin and
`apply_rotary_pos_emb` (rotate_half) for the rotation, with its `rope_type` variants; and
`apply_rotary_pos_emb` alone with given caches (rope_cache, spec rope.cache.*).

Nothing is loaded from a hub: the module is built from a small in-memory `LlamaConfig` (v5 API:
`rope_parameters` holds rope_type, rope_theta and the scaling fields, under the names attnconf's
`scaling` dict already uses). transformers and torch are imported inside methods only.

Border translations (none repairs HF's numerics):
- positions (T,) become position_ids (1, T): HF always passes (B, T) and its apply_rotary_pos_emb
  unsqueezes cos/sin at dim 1 for the head axis, so a (T, r) cos would broadcast wrongly;
- partial rotary (rotary_dim r < E): the config's head_dim is r and the first r channels are rotated,
  the rest passed through, as HF's partial-rotary models do (GPT-NeoX `rotary_ndims`, Phi). Llama's
  own `partial_rotary_factor` is read by the scaled inits only: with rope_type "default" its cos is
  full width (pinned in tests/test_adapters_rope_findings.py), so it cannot express r < E;
- rope_cache: HF's cos/sin are full width, (B, T, r) = cat(c, c) of the cache rows the
  position_ids name (HF gathers its own cos/sin the same way, `cos[position_ids]`, in models that keep
  a table), unsqueezed at dim 1 for the heads; half pairing only (rotate_half);
- dynamic NTK: L₀ is the config's max_position_embeddings (HF's dynamic rule reads that field, not
  original_max_position_embeddings) and a fresh module per call (HF's is stateful: it caches the
  largest sequence length seen).
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require, shape_of
from attnconf.adapters.hf_base import HfTransformers
from attnconf.dtypes import DTYPE_NAMES
from attnconf.operations.rope import ROPE_TYPES

_RULES = ROPE_TYPES                   # every rule of rope.scaling.*
_FIELDS = {"rope_type", "factor", "original_max_position_embeddings", "beta_fast", "beta_slow",
           "attention_factor", "truncate", "low_freq_factor", "high_freq_factor"}


def rope_parameters(base, scaling):
    """(LlamaConfig rope_parameters, max_position_embeddings) for attnconf's base and scaling dict."""
    params = {"rope_type": "default", "rope_theta": float(base)}
    max_positions = 4096
    if scaling:
        scaling = dict(scaling)
        unknown = set(scaling) - _FIELDS
        require(not unknown, f"hf-rope takes scaling fields {sorted(_FIELDS)}, not {sorted(unknown)}")
        rule = scaling.get("rope_type")
        require(rule in _RULES, f"hf-rope implements rope_type {_RULES}, not {rule!r}")
        factor = float(scaling["factor"])
        original = int(scaling.get("original_max_position_embeddings", max_positions))
        params.update({k: v for k, v in scaling.items() if v is not None})
        params["factor"] = factor
        params.pop("original_max_position_embeddings", None)
        if rule in ("linear", "dynamic"):
            max_positions = original  # HF's dynamic L₀ is max_position_embeddings
        else:
            params["original_max_position_embeddings"] = original
            # HF warns unless max_position_embeddings > the original; the rules do not read it here
            max_positions = max(original + 1, int(round(original * factor)))
        if rule == "llama3":
            params.setdefault("low_freq_factor", 1.0)
            params.setdefault("high_freq_factor", 4.0)
    return params, max_positions


class HfRopeAdapter(HfTransformers, Adapter):
    name = "hf-rope"
    description = ("transformers LlamaRotaryEmbedding + apply_rotary_pos_emb (rotate_half: layout half; "
                   "rope_type linear, dynamic, yarn, llama3)")
    capabilities = Capabilities(operations=("rotary_embedding", "rope_cache"), dtypes=DTYPE_NAMES,
                                rope_layouts=("half",), rope_scaling=_RULES)

    hf_modules = ("transformers.models.llama.modeling_llama",)

    def rotary_embedding(self, x, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                         layout="interleaved"):
        import torch
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

        require(layout == "half", "HF Llama rotates half-split pairs (rotate_half) only")
        e = shape_of(x)[-1]
        r = e if rotary_dim is None else int(rotary_dim)
        params, max_positions = rope_parameters(base, scaling)
        config = LlamaConfig(hidden_size=r, num_attention_heads=1, head_dim=r,
                             max_position_embeddings=max_positions, rope_parameters=params)
        position_ids = positions[None, :] if positions.dim() == 1 else positions
        with torch.no_grad():
            module = LlamaRotaryEmbedding(config).to(x.device)
            cos, sin = module(x, position_ids)
            rotated, _ = apply_rotary_pos_emb(x[..., :r], x[..., :r], cos, sin)
        return rotated if r == e else torch.cat((rotated, x[..., r:]), dim=-1)

    def rope_cache(self, x, cos_cache, sin_cache, position_ids, *, rotary_dim=None, layout="half"):
        import torch
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        require(layout == "half", "HF apply_rotary_pos_emb rotates half-split pairs (rotate_half) only")
        e = shape_of(x)[-1]
        r = e if rotary_dim is None else int(rotary_dim)
        with torch.no_grad():
            cos, sin = cos_cache[position_ids], sin_cache[position_ids]           # (B, T, r/2)
            cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
            rotated, _ = apply_rotary_pos_emb(x[..., :r], x[..., :r], cos, sin)
        return rotated if r == e else torch.cat((rotated, x[..., r:]), dim=-1)
