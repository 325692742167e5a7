"""Dtype names used throughout attnconf and their NumPy (ml_dtypes) equivalents.

Names: "float64", "float32", "float16", "bfloat16". Must not import any framework.
"""
from __future__ import annotations

import numpy as np

DTYPE_NAMES = ("float64", "float32", "float16", "bfloat16")
# The fixed output dtype of an integer-valued operation (its registry entry's `dtypes`): such an
# operation runs once, at it, and is judged bit-exactly; `--dtype int64` selects its records.
INDEX_DTYPES = ("int64",)

# Unit in the last place at 1.0 (machine epsilon): the unit in which errors are measured.
EPS = {
    "float64": 2.0 ** -52,
    "float32": 2.0 ** -23,
    "float16": 2.0 ** -10,
    "bfloat16": 2.0 ** -7,
    "int64": 1.0,          # integers: errors counted in units (judged with k = 0: bit-exact)
}


def parse_dtypes(text: str, *, option: str = "--dtype") -> tuple[str, ...]:
    """A comma-separated list of dtype names ("float64,float32") -> the names, once each, in
    order; a UsageError naming `option` (the CLI's --dtype, pytest's --attnconf-dtype) otherwise."""
    from attnconf.errors import UsageError

    names = tuple(t.strip() for t in str(text).split(",") if t.strip())
    if not names:
        raise UsageError(f"{option} should list one or more of {', '.join(DTYPE_NAMES)}, but got {text!r}")
    for n in names:
        if n not in DTYPE_NAMES + INDEX_DTYPES:
            import difflib

            close = difflib.get_close_matches(n, DTYPE_NAMES + INDEX_DTYPES, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{option} should be one of {', '.join(DTYPE_NAMES + INDEX_DTYPES)}, but got {n!r}{hint}")
    return tuple(dict.fromkeys(names))


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a dtype name; bfloat16 comes from ml_dtypes."""
    from attnconf.validation import check_choice

    check_choice("dtype", name, DTYPE_NAMES + INDEX_DTYPES)
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def dtype_name(dtype) -> str:
    """The attnconf name of a NumPy dtype (or anything np.dtype accepts)."""
    name = str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
    from attnconf.validation import check_choice

    return check_choice("dtype", name, DTYPE_NAMES)
