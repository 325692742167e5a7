"""Gradients of scaled dot-product attention (spec/sdpa.md, sdpa.grad): the registry entry."""
from __future__ import annotations

import importlib

from attnconf.operations import Operation
from attnconf.operations import sdpa as _sdpa


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.sdpa_vjp import sdpa_vjp

    dq, dk, dv = sdpa_vjp(inputs["query"], inputs["key"], inputs["value"], inputs["grad_output"],
                          attn_mask=inputs.get("attn_mask"), **options, precision=precision, exact=exact)
    return {"dq": dq, "dk": dk, "dv": dv}


def natural_scale(inputs, options):
    ref_sdpa = importlib.import_module("attnconf.reference.sdpa")  # package attributes are the functions
    ref_vjp = importlib.import_module("attnconf.reference.sdpa_vjp")

    pb = ref_sdpa.prepare(inputs["query"], inputs["key"], inputs["value"],
                          attn_mask=inputs.get("attn_mask"), **options)
    return ref_vjp.natural_scales(pb, ref_vjp._check_grad(pb, inputs["grad_output"]))


def call(adapter, x, options, dtype):
    return adapter.sdpa_vjp(x["query"], x["key"], x["value"], x["grad_output"],
                            attn_mask=x.get("attn_mask"), **options)


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
    name="sdpa_vjp", title="gradients of scaled dot-product attention", spec_file="sdpa.md",
    inputs=("query", "key", "value", "grad_output"), optional_inputs=("attn_mask",), mask_inputs=("attn_mask",),
    options=_sdpa.SDPA_OPTIONS, outputs=("dq", "dk", "dv"), clauses=_sdpa.BASE_CLAUSES + ("sdpa.grad",),
    dtype_clause="sdpa.dtype",
    reference="attnconf.operations.sdpa_vjp:compute", natural_scale="attnconf.operations.sdpa_vjp:natural_scale",
    argument_scale=_sdpa.argument_scale,
    case_prefix="sdpa_vjp", golden_file="sdpa_vjp.npz",
    cases="attnconf.reference.sdpa_cases:sdpa_vjp_cases", families="attnconf.reference.sdpa_cases:SDPA_VJP_FAMILIES",
    adapter_method="sdpa_vjp", call=call, needs=needs, case_claims=_sdpa.case_claims,
    work=work, work_unit="flop", bench_call=bench_call, bench_grid=_sdpa.bench_grid_to_2048,
    report={"plot": "attention", "length": ("query", -2), "label": "vjp"},
)
