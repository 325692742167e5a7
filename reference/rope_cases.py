"""Rotary position embeddings: golden cases and the random families (scaling rules: linear, dynamic, yarn, llama3).

Inputs only (attnconf.reference.cases: Case, representable); the registry entry names the builders
(`cases=`, `families=`). Nothing here is a hand-made expected number."""
from __future__ import annotations

import numpy as np

from attnconf.reference.cases import Case, _make_case, _normal, _seed


def _linear(f):
    return {"rope_type": "linear", "factor": f}


def _dynamic(f, l0):
    return {"rope_type": "dynamic", "factor": f, "original_max_position_embeddings": l0}


def _yarn(f, l0, **extra):
    return {"rope_type": "yarn", "factor": f, "original_max_position_embeddings": l0, **extra}


def _llama3(f, l0, **extra):
    return {"rope_type": "llama3", "factor": f, "original_max_position_embeddings": l0, **extra}


def rope_case(case_id: str, clauses=(), *, B=1, H=2, T=8, E=16, rotary_dim=None, layout="interleaved",
              offset=0, positions=None, base=10000.0, scaling=None, description="") -> Case:
    """x (B, H, T, E) golden-representable; positions offset + arange(T) unless given ((T,) or (B, T))."""
    rng = np.random.default_rng(_seed(case_id))
    x = _normal(rng, (B, H, T, E))
    pos = np.arange(offset, offset + T) if positions is None else np.asarray(positions)
    clauses = list(clauses) + [f"rope.layout.{layout}"]
    if rotary_dim is not None and rotary_dim < E:
        clauses.append("rope.partial")
    if scaling is not None:
        clauses.append(f"rope.scaling.{scaling['rope_type']}")
    options = {"base": base, "rotary_dim": rotary_dim, "scaling": scaling, "layout": layout}
    family = "rope-long" if int(pos.max()) >= 2048 else "rope"
    return _make_case(case_id, "rotary_embedding", clauses, {"x": x, "positions": pos.astype(np.int64)},
                      options, _seed(case_id), family, description)


def rope_cases() -> list[Case]:
    c = rope_case
    cases = []
    for layout in ("interleaved", "half"):
        cases += [c(f"rope/{layout}_e64", T=16, E=64, layout=layout),
                  c(f"rope/{layout}_e128_llama", B=1, H=4, T=32, E=128, layout=layout, base=500_000.0),
                  c(f"rope/{layout}_e2", T=12, E=2, layout=layout, description="the smallest head: one pair"),
                  c(f"rope/{layout}_odd_heads_h3", B=2, H=3, T=6, E=8, layout=layout),
                  c(f"rope/{layout}_partial_r16_e64", T=8, E=64, rotary_dim=16, layout=layout,
                    description="GPT-NeoX rotary_pct 0.25: channels 16 … 63 pass through"),
                  c(f"rope/{layout}_positions_1e6", T=16, E=32, offset=10 ** 6 - 8, layout=layout,
                    description="positions 10^6 − 8 … 10^6 + 7: float32 angles lose ~0.1 rad")]
    rng = np.random.default_rng(_seed("rope/positions"))
    cases += [
        c("rope/partial_r2_e8", T=8, E=8, rotary_dim=2),
        c("rope/partial_r10_e40_half", H=3, T=8, E=40, rotary_dim=10, layout="half",
          description="HF partial_rotary_factor 0.25 on head_dim 40"),
        c("rope/decode_p100", T=1, E=32, offset=100, description="one decode step at past length 100"),
        c("rope/decode_p4095_t4_half", T=4, E=64, offset=4095, layout="half",
          description="a 4-token decode step at past length 4095"),
        c("rope/decode_batch_offsets", B=3, H=2, T=2, E=16,
          positions=np.array([[7, 8], [300, 301], [65_536, 65_537]]),
          description="per-batch past lengths (B, T): a batched KV-cache decode step"),
        c("rope/per_batch_positions", B=2, H=1, T=8, E=16,
          positions=np.array([[0, 0, 0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7]]),
          description="left padding: repeated position 0, then the real tokens"),
        c("rope/positions_sparse_1e6", T=12, E=16, positions=np.sort(rng.integers(0, 10 ** 6 + 1, 12))[::-1],
          description="arbitrary positions up to 10^6, not increasing"),
        c("rope/positions_2pow24", T=4, E=16, offset=2 ** 24 - 2,
          description="around 2^24, where float32 stops holding integers"),
        c("rope/base_100", T=32, E=16, base=100.0),
        c("rope/long_t1024", T=1024, E=16, description="a long prefill: angles up to 1023"),
        c("rope/linear_f2", T=16, E=32, scaling=_linear(2.0)),
        c("rope/linear_f8_long", T=8, E=32, offset=50_000, scaling=_linear(8.0), layout="half"),
        c("rope/dynamic_below_l0", T=16, E=32, offset=40, scaling=_dynamic(2.0, 64),
          description="L = 56 <= L0 = 64: the unscaled base"),
        c("rope/dynamic_above_l0", T=16, E=32, offset=184, scaling=_dynamic(2.0, 64),
          description="L = 200 > L0 = 64: base' = base·(2·200/64 − 1)^(32/30)"),
        c("rope/dynamic_above_l0_per_batch_half", B=2, T=4, E=16, layout="half", scaling=_dynamic(4.0, 128),
          positions=np.array([[0, 1, 2, 3], [996, 997, 998, 999]]),
          description="L is the longest row's: both rows use base' of L = 1000"),
        c("rope/dynamic_1e6", T=8, E=64, offset=10 ** 6 - 8, scaling=_dynamic(8.0, 4096)),
        c("rope/yarn_f4_below_l0", T=16, E=64, offset=100, scaling=_yarn(4.0, 2048)),
        c("rope/yarn_f4_above_l0", T=16, E=64, offset=8000, scaling=_yarn(4.0, 2048)),
        c("rope/yarn_untruncated", T=16, E=64, offset=3000, scaling=_yarn(4.0, 2048, truncate=False),
          description="keras-hub / gpt-oss: no floor/ceil of the correction range"),
        c("rope/yarn_attention_factor_half", T=8, E=32, offset=500, layout="half",
          scaling=_yarn(16.0, 1024, attention_factor=1.5, beta_fast=16.0, beta_slow=2.0)),
        c("rope/yarn_partial_1e6", T=8, E=64, rotary_dim=32, offset=10 ** 6 - 4, scaling=_yarn(32.0, 4096)),
        c("rope/llama3_below_l0", T=16, E=128, offset=1000, base=500_000.0, scaling=_llama3(8.0, 8192),
          description="Llama 3.1's rope_scaling"),
        c("rope/llama3_above_l0_half", T=16, E=128, offset=100_000, base=500_000.0, layout="half",
          scaling=_llama3(8.0, 8192)),
        c("rope/llama3_custom_factors", T=8, E=64, offset=5000, scaling=_llama3(4.0, 512, low_freq_factor=2.0,
                                                                               high_freq_factor=8.0)),
    ]
    return cases


_ROPE_SCALINGS = (None, _linear(4.0), _dynamic(2.0, 32), _yarn(8.0, 256), _yarn(4.0, 256, truncate=False),
                  _llama3(8.0, 128))


def _fam_rope(rng, i, case_id):
    E = [16, 8, 2, 32][i % 4]
    r = [None, None, None, 16][i % 4]
    scaling = _ROPE_SCALINGS[(i // 8) % len(_ROPE_SCALINGS)]
    if E == 2 and scaling and scaling["rope_type"] == "dynamic":
        scaling = None   # dynamic needs r > 2 (its exponent is r/(r−2))
    return rope_case(case_id, B=1 + i % 2, H=[1, 3][(i // 2) % 2], T=8, E=E, rotary_dim=r,
                     layout=("interleaved", "half")[(i // 4) % 2], offset=int(rng.integers(0, 64)),
                     scaling=scaling)


def _fam_rope_long(rng, i, case_id):
    return rope_case(case_id, T=4, E=[16, 64][i % 2], layout=("interleaved", "half")[(i // 2) % 2],
                     offset=int(rng.integers(2048, 1_000_000)),
                     scaling=_ROPE_SCALINGS[(i // 4) % len(_ROPE_SCALINGS)])


ROPE_FAMILIES = {"rope": _fam_rope, "rope-long": _fam_rope_long}
