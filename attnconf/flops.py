"""Work counts of clause perf.flops: what one call of each operation is worth in flops or entries.

A neutral module (it imports nothing): the registry entries' `work` hooks use it, and so does
the benchmark layer (conformance/bench), which the registry must not import.

Must not: count softmax, masking or scaling (the FlashAttention benchmarks' convention, which the
spec adopts), nor depend on the implementation measured.
"""
from __future__ import annotations


def sdpa_flops(B: int, H: int, L: int, S: int, E: int, Ev: int | None = None, *,
               causal: bool = False) -> float:
    """2·B·H·L·S·E + 2·B·H·L·S·Ev (4·B·H·L·S·E when Ev = E), halved when causal."""
    Ev = E if Ev is None else Ev
    flops = 2.0 * B * H * L * S * E + 2.0 * B * H * L * S * Ev
    return flops / 2 if causal else flops


def sdpa_vjp_flops(B: int, H: int, L: int, S: int, E: int, Ev: int | None = None, *,
                   causal: bool = False) -> float:
    """2.5 × the forward count: five matrix products instead of two."""
    return 2.5 * sdpa_flops(B, H, L, S, E, Ev, causal=causal)


def mha_flops(B: int, L: int, S: int, D: int, Dkv: int, H: int, Hkv: int, E: int, Ev: int, *,
              causal: bool = False) -> float:
    """Attention plus projections: 2·B·L·D·H·E + 2·B·S·Dkv·Hkv·(E + Ev) + 2·B·L·H·Ev·D."""
    projections = 2.0 * B * L * D * H * E + 2.0 * B * S * Dkv * Hkv * (E + Ev) + 2.0 * B * L * H * Ev * D
    return projections + sdpa_flops(B, H, L, S, E, Ev, causal=causal)


def encoding_entries(num_positions: int, dim: int) -> float:
    """Encodings are reported in table entries (num_positions · dim) per second."""
    return float(num_positions) * dim
