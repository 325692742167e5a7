"""Precision bugs: computing in a lower precision than the dtype claimed, wrong output dtype,
nondeterminism."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class Float16InsideFloat32(ZooAdapter):
    """Claims float32 but computes logits, softmax and the weighted sum in float16 (a kernel
    that silently autocasts). Bug class: low-precision compute; errors ~1e3 ulp of float32."""

    name = "known-bad/float16-inside-float32"
    bug_class = "low-precision compute"

    def compute_dtype(self, name):
        return np.dtype(np.float16) if name == "float32" else super().compute_dtype(name)


class Float32ClaimedFloat64(ZooAdapter):
    """Claims float64 but computes everything in float32 and casts the result up (a kernel with
    a float32-only path behind a float64 signature). Bug class: low-precision compute."""

    name = "known-bad/float32-claimed-float64"
    bug_class = "low-precision compute"

    def compute_dtype(self, name):
        return np.dtype(np.float32)

    def angle_dtype(self, name):
        return np.dtype(np.float32)


class OutputUpcastFloat32(ZooAdapter):
    """Returns float32 for float16/bfloat16 inputs (a kernel that forgets to cast back). Bug
    class: output dtype (clause sdpa.dtype); checked before values."""

    name = "known-bad/output-upcast-float32"
    bug_class = "output dtype"

    def output_dtype(self, name):
        return np.dtype(np.float32) if name in ("float16", "bfloat16") else super().output_dtype(name)


class NondeterministicKeyOrder(ZooAdapter):
    """Sums the weighted values in a different key order on every call (as atomics-based GPU
    reductions do) while claiming determinism: identical inputs give results that differ in the
    last bits. Bug class: determinism."""

    name = "known-bad/nondeterministic-key-order"
    bug_class = "determinism"

    def __init__(self):
        self._rng = np.random.default_rng()

    def combine(self, p, v):
        order = self._rng.permutation(p.shape[-1])
        out = np.zeros(p.shape[:-1] + (v.shape[-1],), p.dtype)
        for j in order:     # sequential accumulation: the rounding depends on the order
            out = out + p[..., j:j + 1] * v[..., j:j + 1, :]
        return out
