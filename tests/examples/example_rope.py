"""A bare NumPy rotary embedding (interleaved pairs, as the paper) that knows linear scaling only.

Run it: attnconf run --rope example_rope:rope --framework numpy   (from this folder)
It accepts base=, rotary_dim= and scaling=, and declares (docs/plugins.md) its layout and the one
scaling rule it implements: cases with dynamic, YaRN or llama3 scaling, or in the half layout,
are reported as skipped-unsupported, never as passed. Angles in float64, p·ω as one product:
within the float64 tolerance's argument term (tol.rule), like most real implementations.
"""
import numpy as np

from attnconf.adapters import declare


@declare(rope_layout="interleaved", rope_scaling=("linear",), name="example-rope")
def rope(x, positions, *, base=10000.0, rotary_dim=None, scaling=None):
    r = x.shape[-1] if rotary_dim is None else rotary_dim
    omega = base ** (-np.arange(0, r, 2, dtype=np.float64) / r)        # ω_i = base^(−2i/r)
    if scaling is not None:                                             # linear: positions / factor
        omega = omega / scaling["factor"]
    theta = np.asarray(positions, dtype=np.float64)[..., None] * omega  # (T, r/2) or (B, T, r/2)
    if theta.ndim == 3:
        theta = theta[:, None]                                          # per-batch: over the heads
    cos, sin = np.cos(theta), np.sin(theta)
    a, b = x[..., 0:r:2].astype(np.float64), x[..., 1:r:2].astype(np.float64)
    out = x.copy()                                                      # channels r … E−1 pass through
    out[..., 0:r:2] = a * cos - b * sin
    out[..., 1:r:2] = b * cos + a * sin
    return out


def rope_fixed(x, positions):
    """No keywords at all: base 10000, every channel rotated, no scaling. Cases needing another
    base, partial rotary or a scaling rule are skipped (the keyword is missing), as for sdpa."""
    return rope(x, positions)
