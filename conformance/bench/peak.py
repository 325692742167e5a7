"""The matrix-multiply peak of this machine per dtype, measured in the same run as the benchmarks.

float64 (dgemm) and float32 (sgemm) through NumPy's BLAS; bfloat16 through PyTorch's matmul when
PyTorch is installed, and JAX's when an adapter already imported it, the faster one counting
(NumPy has no bfloat16 BLAS). The figure is the best of a few square products
of size n, in GFLOP/s (2·n³ flops each): a probe of what the hardware gives, not a benchmark.
Must not: import a framework at module level, or run longer than about a second per dtype.
"""
from __future__ import annotations

import sys
import time

import numpy as np

PROBE_N = {"float64": 2048, "float32": 2048, "bfloat16": 2048, "float16": 2048}


def matmul_peak(dtype: str, *, n: int | None = None, rounds: int = 5) -> dict | None:
    """{"gflops", "n", "library", "rounds"} for square matrix products, or None if unsupported."""
    n = n or PROBE_N.get(dtype, 2048)
    if dtype in ("float64", "float32"):
        rng = np.random.default_rng(0)
        a = rng.random((n, n)).astype(dtype)
        b = rng.random((n, n)).astype(dtype)
        c = np.empty((n, n), dtype=dtype)
        best = _best(lambda: np.matmul(a, b, out=c), rounds)
        return {"gflops": 2.0 * n ** 3 / best / 1e9, "n": n, "library": "numpy", "rounds": rounds}
    if dtype in ("bfloat16", "float16"):
        probes = [r for r in (_torch_probe(dtype, n, rounds), _jax_probe(dtype, n, rounds)) if r]
        return max(probes, key=lambda r: r["gflops"]) if probes else None
    return None


def _torch_probe(dtype, n, rounds):
    try:
        import torch
    except ImportError:
        return None
    a = torch.rand((n, n), dtype=getattr(torch, dtype))
    b = torch.rand((n, n), dtype=getattr(torch, dtype))
    best = _best(lambda: torch.matmul(a, b), rounds)
    return {"gflops": 2.0 * n ** 3 / best / 1e9, "n": n, "library": f"torch {torch.__version__}",
            "rounds": rounds}


def _jax_probe(dtype, n, rounds):
    # Only when an adapter already imported JAX: the probe must not pull a framework in itself.
    if "jax" not in sys.modules:
        return None
    import jax
    import jax.numpy as jnp

    a = jnp.ones((n, n), dtype=getattr(jnp, dtype))
    matmul = jax.jit(jnp.matmul)
    best = _best(lambda: matmul(a, a).block_until_ready(), rounds)
    return {"gflops": 2.0 * n ** 3 / best / 1e9, "n": n, "library": f"jax {jax.__version__}",
            "rounds": rounds}


def peaks(dtypes=("float64", "float32", "bfloat16"), *, n: int | None = None, rounds: int = 5) -> dict:
    """{dtype: matmul_peak(...)} for the dtypes a library here supports."""
    result = {}
    for dtype in dtypes:
        probe = matmul_peak(dtype, n=n, rounds=rounds)
        if probe is not None:
            result[dtype] = probe
    return result


def _best(call, rounds: int) -> float:
    call()  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best
