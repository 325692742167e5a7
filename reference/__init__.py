"""The canonical NumPy implementation of spec/; it defines the golden vectors.

Public API (one module per operation; precise.py holds the extended-precision helpers and
oracle.py the mpmath oracle used by tests and `attnconf accuracy`):

    sdpa, sdpa_vjp, multi_head_attention, sinusoidal_encoding, add_sinusoidal_encoding
    compute(operation, inputs, options, *, precision=None, exact=False) -> {name: array}
    natural_scales(operation, inputs, options) -> {name: array}

Must not: import any framework (only NumPy, ml_dtypes, and mpmath for constants).
"""
from __future__ import annotations

import importlib

import numpy as np

from attnconf.reference.encoding import add_sinusoidal_encoding, sinusoidal_encoding
from attnconf.reference.mha import multi_head_attention
from attnconf.reference.sdpa import sdpa
from attnconf.reference.sdpa_vjp import sdpa_vjp
from attnconf.validation import check_choice, fail

__all__ = ["sdpa", "sdpa_vjp", "multi_head_attention", "sinusoidal_encoding",
           "add_sinusoidal_encoding", "compute", "natural_scales", "OPERATIONS"]

OPERATIONS = ("sdpa", "sdpa_vjp", "multi_head_attention", "sinusoidal_encoding")

_SDPA_OPTIONS = ("is_causal", "causal_alignment", "scale", "enable_gqa", "fully_masked")
_MHA_OPTIONS = ("num_heads", "num_kv_heads", "is_causal")
_ENC_OPTIONS = ("num_positions", "dim", "base", "offset", "layout", "frequencies")
_INPUTS = {
    "sdpa": (("query", "key", "value"), ("attn_mask",)),
    "sdpa_vjp": (("query", "key", "value", "grad_output"), ("attn_mask",)),
    "multi_head_attention": (("query_input", "wq", "wk", "wv", "wo"),
                             ("key_value_input", "bq", "bk", "bv", "bo", "attn_mask")),
    "sinusoidal_encoding": ((), ()),
}
_OPTIONS = {"sdpa": _SDPA_OPTIONS, "sdpa_vjp": _SDPA_OPTIONS,
            "multi_head_attention": _MHA_OPTIONS, "sinusoidal_encoding": _ENC_OPTIONS}


def _check(operation, inputs, options):
    check_choice("operation", operation, OPERATIONS)
    inputs = dict(inputs or {})
    options = dict(options or {})
    required, optional = _INPUTS[operation]
    for name in required:
        if name not in inputs:
            fail(f"inputs of {operation}", f"a dict containing {name!r}", f"keys {sorted(inputs)}")
    extra = sorted(set(inputs) - set(required) - set(optional))
    if extra:
        fail(f"inputs of {operation}", "among " + ", ".join(required + optional), ", ".join(extra))
    bad = sorted(set(options) - set(_OPTIONS[operation]))
    if bad:
        fail(f"options of {operation}", "among " + ", ".join(_OPTIONS[operation]), ", ".join(bad))
    return inputs, options


def compute(operation, inputs, options, *, precision=None, exact=False) -> dict[str, np.ndarray]:
    """Evaluate `operation` on named inputs with keyword options; outputs by name.

    Outputs: "output" (sdpa, multi_head_attention, sinusoidal_encoding) or "dq", "dk", "dv"
    (sdpa_vjp). precision None = float64 default path, "float32" / "float16" / "bfloat16" =
    the same-precision baseline in that dtype; exact=True = golden grade (float64).
    """
    inputs, options = _check(operation, inputs, options)
    kw = dict(precision=precision, exact=exact)
    if operation == "sdpa":
        out = sdpa(inputs["query"], inputs["key"], inputs["value"],
                   attn_mask=inputs.get("attn_mask"), **options, **kw)
        return {"output": out}
    if operation == "sdpa_vjp":
        dq, dk, dv = sdpa_vjp(inputs["query"], inputs["key"], inputs["value"],
                              inputs["grad_output"], attn_mask=inputs.get("attn_mask"),
                              **options, **kw)
        return {"dq": dq, "dk": dk, "dv": dv}
    if operation == "multi_head_attention":
        weights = {n: inputs[n] for n in ("wq", "wk", "wv", "wo", "bq", "bk", "bv", "bo") if n in inputs}
        out = multi_head_attention(inputs["query_input"], inputs.get("key_value_input"), weights,
                                   attn_mask=inputs.get("attn_mask"), **options, **kw)
        return {"output": out}
    return {"output": sinusoidal_encoding(**options, **kw)}


def natural_scales(operation, inputs, options) -> dict[str, np.ndarray]:
    """The natural scale of every output element (tol.metric; defined in spec/accuracy.md).

    Same names and shapes as compute's outputs, float64, >= 0. Errors are measured as
    |actual − expected| / (natural scale · eps of the dtype).
    """
    # import_module: the package attributes `sdpa`/`sdpa_vjp` are the functions, not the modules
    _mha = importlib.import_module("attnconf.reference.mha")
    _sdpa = importlib.import_module("attnconf.reference.sdpa")
    _vjp = importlib.import_module("attnconf.reference.sdpa_vjp")
    _enc = importlib.import_module("attnconf.reference.encoding")

    inputs, options = _check(operation, inputs, options)
    if operation in ("sdpa", "sdpa_vjp"):
        pb = _sdpa.prepare(inputs["query"], inputs["key"], inputs["value"],
                           attn_mask=inputs.get("attn_mask"), **options)
        if operation == "sdpa":
            return {"output": _sdpa.natural_scale(pb)}
        g = _vjp._check_grad(pb, inputs["grad_output"])
        return _vjp.natural_scales(pb, g)
    if operation == "multi_head_attention":
        weights = {n: inputs[n] for n in ("wq", "wk", "wv", "wo", "bq", "bk", "bv", "bo") if n in inputs}
        return {"output": _mha.natural_scale(inputs["query_input"], inputs.get("key_value_input"),
                                             weights, attn_mask=inputs.get("attn_mask"), **options)}
    n, d, _, _ = _enc.check_options(options.get("num_positions"), options.get("dim"),
                                    options.get("base", 10000.0), options.get("offset", 0),
                                    options.get("layout", "interleaved"),
                                    options.get("frequencies", "vaswani"), False, None)
    return {"output": np.ones((n, d))}
