"""Gradients of scaled dot-product attention and its kernel options (spec/sdpa.md, sdpa.grad,
sdpa.opt.grad): the registry entry."""
from __future__ import annotations

import importlib

from attnconf.operations import Operation
from attnconf.operations import sdpa as _sdpa


# dsinks is an output only of the cases that give sinks (sdpa.opt.grad): such a case's expected
# values hold it and an adapter returns (dq, dk, dv, dsinks); every other case, (dq, dk, dv).
OUTPUTS = ("dq", "dk", "dv", "dsinks")


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.sdpa_vjp import sdpa_vjp

    grads = sdpa_vjp(inputs["query"], inputs["key"], inputs["value"], inputs["grad_output"],
                     attn_mask=inputs.get("attn_mask"), **_sdpa._options(inputs, options),
                     precision=precision, exact=exact)
    return dict(zip(OUTPUTS, grads))


def natural_scale(inputs, options):
    ref_sdpa = importlib.import_module("attnconf.reference.sdpa")  # package attributes are the functions
    ref_vjp = importlib.import_module("attnconf.reference.sdpa_vjp")

    pb = ref_sdpa.prepare(inputs["query"], inputs["key"], inputs["value"],
                          attn_mask=inputs.get("attn_mask"), **_sdpa._options(inputs, options))
    return ref_vjp.natural_scales(pb, ref_vjp._check_grad(pb, inputs["grad_output"]))


def call(adapter, x, options, dtype):
    """adapter.sdpa_vjp on native inputs, the kernel options passed as sdpa's `call` passes them
    (only when the case sets them, only to an adapter listing them in Capabilities.sdpa_options;
    otherwise the case is Unsupported)."""
    from attnconf.errors import Unsupported

    used = _sdpa.used_options(x, options)
    declared = tuple(getattr(adapter.capabilities, "sdpa_options", ()))
    missing = [n for n in used if n not in declared]
    if missing:
        raise Unsupported(f"{adapter.name} does not support the sdpa option(s) {', '.join(missing)} "
                          f"for gradients (its Capabilities.sdpa_options: {', '.join(declared) or 'none'})")
    kwargs = {k: v for k, v in options.items() if k not in _sdpa.OPTION_NAMES or v is not None}
    kwargs.update({n: x[n] for n in _sdpa.OPTION_INPUTS if x.get(n) is not None})
    return adapter.sdpa_vjp(x["query"], x["key"], x["value"], x["grad_output"],
                            attn_mask=x.get("attn_mask"), **kwargs)


def needs(caps) -> str:
    return "" if caps.gradients else "declares no gradients"


def work(shape, causal=False):
    """2.5 × the forward count: five matrix products instead of two (perf.flops)."""
    from attnconf.flops import sdpa_vjp_flops

    return sdpa_vjp_flops(shape["B"], shape["H"], shape["L"], shape["S"], shape["E"], shape.get("Ev"),
                          causal=causal)


def bench_call(adapter, point, seed=0):
    arrays, rng = _sdpa.bench_inputs(point, seed)
    arrays["grad_output"] = rng.standard_normal((point.B, point.H, point.L, point.E))
    x = {k: adapter.from_numpy(v, point.dtype) for k, v in arrays.items()}
    return lambda: adapter.sdpa_vjp(x["query"], x["key"], x["value"], x["grad_output"], is_causal=point.causal)


OPERATION = Operation(
    invariants=("attnconf.conformance.checks.invariants.sdpa_vjp_options",),
    name="sdpa_vjp", title="gradients of scaled dot-product attention", spec_file="sdpa.md",
    inputs=("query", "key", "value", "grad_output"), optional_inputs=("attn_mask",) + _sdpa.OPTION_INPUTS,
    mask_inputs=("attn_mask",), index_inputs=_sdpa.INDEX_INPUTS,
    options=_sdpa.SDPA_OPTIONS + ("window", "softcap"), outputs=OUTPUTS,
    clauses=_sdpa.BASE_CLAUSES + ("sdpa.grad",),
    dtype_clause="sdpa.dtype",
    reference="attnconf.operations.sdpa_vjp:compute", natural_scale="attnconf.operations.sdpa_vjp:natural_scale",
    argument_scale=_sdpa.argument_scale,
    case_prefix="sdpa_vjp", golden_file="sdpa_vjp.npz",
    cases="attnconf.reference.sdpa_vjp_cases:sdpa_vjp_cases", families="attnconf.reference.sdpa_vjp_cases:FAMILIES",
    adapter_method="sdpa_vjp", call=call, needs=needs, case_claims=_sdpa.case_claims,
    work=work, work_unit="flop", bench_call=bench_call, bench_grid=_sdpa.bench_grid_to_2048,
    report={"plot": "attention", "length": ("query", -2), "label": "vjp"},
)
