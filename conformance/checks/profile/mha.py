"""Profile of the multi-head attention layer: its output-dtype probe (no aspects of its own).
Named by the registry entry attnconf/operations/mha.py (`profile=`)."""
from __future__ import annotations

from attnconf.conformance.checks import strategies as gen


def _dtype_probe_mha(adapter, dt):
    ex = {"B": 1, "L": 3, "S": 3, "H": 1, "E": 2, "Ev": 2, "D": 2, "Dkv": 2, "cross": False, "bias": False, "seed": 0}
    x, _, w = gen.mha_arrays(ex, dt)
    return adapter.multi_head_attention(adapter.from_numpy(x, dt), adapter.from_numpy(x, dt),
                                        {n: adapter.from_numpy(a, dt) for n, a in w.items()}, num_heads=1)


OUTPUT_DTYPE = _dtype_probe_mha
