"""A bare NumPy sinusoidal encoding (the paper's interleaved table) that accepts dtype=.

Run it: attnconf run --encoding example_encoding:sinusoidal --framework numpy   (from this folder)
Function attributes state the variant (the decorator works too); undeclared = paper variant.
"""
import numpy as np


def sinusoidal(num_positions, dim, *, base=10000.0, offset=0, dtype=np.float32):
    positions = np.arange(offset, offset + num_positions, dtype=np.float64)[:, None]
    omega = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    table = np.zeros((num_positions, dim))
    table[:, 0::2] = np.sin(positions * omega)
    table[:, 1::2] = np.cos(positions * omega)[:, : dim // 2]
    return table.astype(dtype)


sinusoidal.layout = "interleaved"
sinusoidal.frequencies = "vaswani"


def concat_t2t(num_positions, dim, *, base=10000.0, offset=0):
    """tensor2tensor's table ([sin | cos], ω_i = base^(-i/(d/2-1))), float32 only (no dtype=)."""
    n = dim // 2
    positions = np.arange(offset, offset + num_positions, dtype=np.float64)[:, None]
    omega = np.exp(-np.arange(n) * np.log(base) / max(n - 1, 1))
    table = np.concatenate([np.sin(positions * omega), np.cos(positions * omega)], axis=1)
    if dim % 2:
        table = np.pad(table, ((0, 0), (0, 1)))
    return table.astype(np.float32)


concat_t2t.layout = "concat"
concat_t2t.frequencies = "t2t"
