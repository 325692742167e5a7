"""Dtype names used throughout attnconf and their NumPy (ml_dtypes) equivalents.

Names: "float64", "float32", "float16", "bfloat16". Must not import any framework.
"""
from __future__ import annotations

import numpy as np

DTYPE_NAMES = ("float64", "float32", "float16", "bfloat16")

# Unit in the last place at 1.0 (machine epsilon): the unit in which errors are measured.
EPS = {
    "float64": 2.0 ** -52,
    "float32": 2.0 ** -23,
    "float16": 2.0 ** -10,
    "bfloat16": 2.0 ** -7,
}


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a dtype name; bfloat16 comes from ml_dtypes."""
    from attnconf.validation import check_choice

    check_choice("dtype", name, DTYPE_NAMES)
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def dtype_name(dtype) -> str:
    """The attnconf name of a NumPy dtype (or anything np.dtype accepts)."""
    name = str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
    from attnconf.validation import check_choice

    return check_choice("dtype", name, DTYPE_NAMES)
