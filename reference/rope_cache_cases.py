"""RoPE from given cos/sin caches (clauses rope.cache.*): golden cases and the random families.

Inputs only: x (B, H, T, E) and the caches golden-representable (exact in every dtype), the
position_ids int64 cache rows per batch element (repeated, out of order, past 4096). Caches are
either random tables (as ONNX's own backend cases: the operation must not assume they hold cos and
sin) or cos/sin of real angles rounded to representable values. Nothing here is an expected number.
"""
from __future__ import annotations

import numpy as np

from attnconf.reference.cases import Case, _make_case, _normal, _seed, representable


def base_tables(n: int, r: int, base: float = 10000.0):
    """(cos, sin) (N, r/2) float64 of θ = p·base^(−2i/r) (the tables a base-built RoPE uses)."""
    w = base ** (-np.arange(0, r, 2, dtype=np.float64) / r)
    theta = np.arange(n, dtype=np.float64)[:, None] * w[None, :]
    return np.cos(theta), np.sin(theta)


def rope_cache_case(case_id: str, clauses=(), *, B=2, H=2, T=5, E=8, rotary_dim=None, layout="half",
                    N=16, tables="random", positions=None, family="", description="") -> Case:
    """tables: "random" (uniform in [−1, 1]), "unit" (ONNX's uniform [0, 1)), or "base" (cos and
    sin of base-10000 angles, rounded to representable values); positions: (B, T) or None (drawn)."""
    rng = np.random.default_rng(_seed(case_id))
    r = E if rotary_dim is None else rotary_dim
    x = _normal(rng, (B, H, T, E))
    if tables == "base":
        cos, sin = base_tables(N, r)
    elif tables == "unit":
        cos, sin = rng.uniform(0, 1, (N, r // 2)), rng.uniform(0, 1, (N, r // 2))
    else:
        cos, sin = rng.uniform(-1, 1, (N, r // 2)), rng.uniform(-1, 1, (N, r // 2))
    pos = rng.integers(0, N, (B, T)) if positions is None else np.asarray(positions)
    clauses = list(clauses) + [f"rope.cache.{layout}"]
    if r < E:
        clauses.append("rope.cache.partial")
    inputs = {"x": x, "cos_cache": representable(cos), "sin_cache": representable(sin),
              "position_ids": pos.astype(np.int64)}
    options = {"rotary_dim": rotary_dim, "layout": layout}
    return _make_case(case_id, "rope_cache", clauses, inputs, options, _seed(case_id),
                      family or f"rope-cache-{layout}", description)


def rope_cache_cases() -> list[Case]:
    c = rope_cache_case
    return [
        c("rope_cache/half_b2_t5_e8_n16", layout="half"),
        c("rope_cache/interleaved_b2_t5_e8_n16", layout="interleaved"),
        c("rope_cache/half_rotary4_e8", layout="half", rotary_dim=4, family="rope-cache-partial",
          description="channels 4 … 7 pass through"),
        c("rope_cache/interleaved_rotary4_e10", layout="interleaved", rotary_dim=4, E=10, H=3,
          family="rope-cache-partial"),
        c("rope_cache/onnx_like_unit_tables_n50", B=2, H=4, T=3, E=8, N=50, tables="unit",
          description="as ONNX's test_rotary_embedding: random tables in [0, 1), not cos and sin"),
        c("rope_cache/base_tables_decode_4090", B=1, H=2, T=6, E=8, N=4096, tables="base",
          positions=[[4090, 4091, 4092, 4093, 4094, 4095]],
          description="cos/sin tables of base 10000, a decode step at rows 4090 … 4095"),
        c("rope_cache/per_batch_repeated_positions", B=3, H=1, T=4, E=6, N=8,
          positions=[[0, 0, 7, 3], [5, 4, 3, 2], [1, 1, 1, 1]],
          description="per-batch rows, repeated and out of order: the rows named, not 0 … T − 1"),
        c("rope_cache/edge_e2_t1", B=1, H=1, T=1, E=2, N=3, positions=[[2]]),
        c("rope_cache/fewer_rows_than_tokens", B=1, H=2, T=5, E=4, N=3, positions=[[0, 2, 1, 2, 0]],
          description="a 3-row cache for 5 tokens whose ids all lie in it"),
    ]


def _family(layout, partial):
    def build(rng, i, case_id):
        E = (4, 6, 8)[i % 3]
        r = (2 if E == 4 else 4) if partial else None
        return rope_cache_case(case_id, B=1 + i % 2, H=(1, 2, 3)[i % 3], T=(1, 3, 5)[(i // 3) % 3], E=E,
                               rotary_dim=r, layout=layout if not partial else ("half", "interleaved")[i % 2],
                               N=(4, 32, 300)[i % 3], tables=("random", "base", "unit")[(i // 2) % 3],
                               family=f"rope-cache-{'partial' if partial else layout}")
    return build


FAMILIES = {"rope-cache-half": _family("half", False), "rope-cache-interleaved": _family("interleaved", False),
            "rope-cache-partial": _family("half", True)}
