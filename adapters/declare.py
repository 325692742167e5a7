"""`attnconf.adapters.declare`: how a bare plug-in function states what it claims.

A function that declares nothing claims the canonical spec. Declarations are read from the
decorator's `__attnconf__` dict first, then from plain function attributes of the same names.
Must not import any framework.
"""
from __future__ import annotations

from attnconf.operations.rope import ROPE_TYPES
from attnconf.validation import check_choice, fail

# claim -> allowed values (None: any value of the right kind, checked where used)
CLAIMS = {
    "name": None,                                    # row name in results
    "causal_alignment": ("top_left", "bottom_right"),
    "fully_masked": ("zero", "uniform", "nan"),
    "layout": ("interleaved", "concat", "cos_first"),
    "frequencies": ("vaswani", "t2t"),
    "rope_layout": ("interleaved", "half"),          # pairs (2i, 2i+1) | (i, i + r/2)
    "rope_scaling": None,                            # subset of ROPE_TYPES
    "dtypes": None,                                  # subset of the four dtype names
    "mask_kinds": None,                              # subset of ("bool", "float")
    "mask_and_causal": None,                         # bool
    "gradients": None,                               # bool
    "deterministic": None,                           # bool
    "description": None,
}


def _check(claim: str, value):
    if claim not in CLAIMS:
        fail("declared claim", "one of " + ", ".join(CLAIMS), repr(claim), TypeError)
    choices = CLAIMS[claim]
    if choices is not None:
        check_choice(claim, value, choices)
    elif claim == "dtypes":
        for d in value:
            check_choice("dtypes entry", d, ("float64", "float32", "float16", "bfloat16"))
    elif claim == "rope_scaling":
        for k in value:
            check_choice("rope_scaling entry", k, ROPE_TYPES)
    elif claim == "mask_kinds":
        for k in value:
            check_choice("mask_kinds entry", k, ("bool", "float"))
    return value


def declare(**claims):
    """Decorator: `@declare(causal_alignment="bottom_right", fully_masked="uniform")`."""
    for claim, value in claims.items():
        _check(claim, value)

    def mark(func):
        merged = dict(getattr(func, "__attnconf__", {}))
        merged.update(claims)
        func.__attnconf__ = merged
        return func

    return mark


def declarations(func) -> dict:
    """The claims of `func`: attributes named like a claim, overridden by the decorator's."""
    found = {c: getattr(func, c) for c in CLAIMS if c != "description" and hasattr(func, c)}
    found.update(getattr(func, "__attnconf__", {}))
    for claim, value in found.items():
        _check(claim, value)
    return found
