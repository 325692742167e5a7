"""Bare-function sinusoidal-encoding plug-ins (framework numpy): one correct, some broken."""
from __future__ import annotations

import numpy as np


def good(num_positions, dim, *, base=10000.0, offset=0, dtype=None):
    """The paper's interleaved table, angles in float64 (spec enc.* defaults)."""
    p = np.arange(offset, offset + num_positions, dtype=np.float64)[:, None]
    i = np.arange((dim + 1) // 2, dtype=np.float64)
    angles = p * base ** (-2.0 * i / dim)
    table = np.zeros((num_positions, dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : dim // 2])
    return table.astype(dtype or np.float32)


def segfault(num_positions, dim, **kw):
    import ctypes

    return ctypes.string_at(0)


def hang(num_positions, dim, **kw):
    while True:
        pass


def returns_none(num_positions, dim, **kw):
    return None


def nan_table(num_positions, dim, **kw):
    out = good(num_positions, dim, **kw)
    out[0, 0] = np.nan
    return out
