"""The canonical NumPy implementation of spec/; it defines the golden vectors.

Public API (one module per operation; precise.py holds the extended-precision helpers and
oracle.py the mpmath oracle used by tests and `attnconf accuracy`):

    sdpa, sdpa_vjp, multi_head_attention, sinusoidal_encoding, add_sinusoidal_encoding,
    rotary_embedding, rotary_embedding_vjp, rope_cache
    compute(operation, inputs, options, *, precision=None, exact=False) -> {name: array}
    natural_scales(operation, inputs, options) -> {name: array}

Must not: import any framework (only NumPy, ml_dtypes, and mpmath for constants).
"""
from __future__ import annotations

import numpy as np

from attnconf import operations as _registry
from attnconf.reference.encoding import add_sinusoidal_encoding, sinusoidal_encoding
from attnconf.reference.mha import multi_head_attention
from attnconf.reference.rope import rotary_embedding, rotary_embedding_vjp
from attnconf.reference.rope_cache import rope_cache
from attnconf.reference.sdpa import sdpa
from attnconf.reference.sdpa_vjp import sdpa_vjp
from attnconf.validation import check_choice, fail

__all__ = ["sdpa", "sdpa_vjp", "multi_head_attention", "sinusoidal_encoding",
           "add_sinusoidal_encoding", "rotary_embedding", "rotary_embedding_vjp", "rope_cache", "compute", "natural_scales"]


def _check(operation, inputs, options):
    check_choice("operation", operation, _registry.names())
    op = _registry.get(operation)
    inputs = dict(inputs or {})
    options = dict(options or {})
    required, optional = tuple(op.inputs), tuple(op.optional_inputs)
    for name in required:
        if name not in inputs:
            fail(f"inputs of {operation}", f"a dict containing {name!r}", f"keys {sorted(inputs)}")
    extra = sorted(set(inputs) - set(required) - set(optional))
    if extra:
        fail(f"inputs of {operation}", "among " + ", ".join(required + optional), ", ".join(extra))
    bad = sorted(set(options) - set(op.options))
    if bad:
        fail(f"options of {operation}", "among " + ", ".join(op.options), ", ".join(bad))
    return op, inputs, options


def compute(operation, inputs, options, *, precision=None, exact=False) -> dict[str, np.ndarray]:
    """Evaluate `operation` on named inputs with keyword options; outputs by name.

    Outputs: the operation's registered `outputs` ("output"; "dq", "dk", "dv" for sdpa_vjp, and
    "dsinks" when its case has sinks).
    precision None = float64 default path, "float32" / "float16" / "bfloat16" = the
    same-precision baseline in that dtype; exact=True = golden grade (float64). The function is
    the registry entry's `reference` (attnconf.operations).
    """
    op, inputs, options = _check(operation, inputs, options)
    return op.compute(inputs, options, precision=precision, exact=exact)


def natural_scales(operation, inputs, options) -> dict[str, np.ndarray]:
    """The natural scale of every output element (tol.metric; defined in spec/accuracy.md).

    Same names and shapes as compute's outputs, float64, >= 0. Errors are measured as
    |actual − expected| / (natural scale · eps of the dtype). The function is the registry
    entry's `natural_scale`.
    """
    op, inputs, options = _check(operation, inputs, options)
    return op.scales(inputs, options)
