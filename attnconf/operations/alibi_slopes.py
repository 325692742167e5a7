"""ALiBi head slopes (spec/alibi.md, alibi.slopes): the registry entry."""
from __future__ import annotations

from attnconf.operations import Operation

OPTIONS = ("num_heads", "max_bias")


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.alibi import alibi_slopes

    return {"output": alibi_slopes(**options, precision=precision, exact=exact)}


def natural_scale(inputs, options):
    """alibi.target: each slope's own magnitude |m_h| (tol.metric)."""
    import numpy as np

    return {"output": np.abs(compute(inputs, options, exact=True)["output"])}


def call(adapter, x, options, dtype):
    opts = dict(options)
    return adapter.alibi_slopes(opts.pop("num_heads"), dtype=dtype, **opts)


def argument_scale(case, positions=None):
    """The power k of each head's slope (a kernel forming m_k = base^k carries the base's
    rounding k times: tol.rule's argument term, alibi.target), shaped like the output."""
    from attnconf.reference.alibi import slope_powers

    return slope_powers(case.options["num_heads"], case.options.get("max_bias", 8.0))


OPERATION = Operation(
    # the checks of the whole family (one module each, named here only so they run once)
    invariants=("attnconf.conformance.checks.invariants.alibi",),
    profile=("attnconf.conformance.checks.profile.alibi",),
    name="alibi_slopes", title="ALiBi head slopes", spec_file="alibi.md",
    inputs=(), options=OPTIONS, outputs=("output",),
    clauses=("alibi.inputs", "alibi.slopes", "alibi.target", "alibi.dtype"), dtype_clause="alibi.dtype",
    reference="attnconf.operations.alibi_slopes:compute",
    natural_scale="attnconf.operations.alibi_slopes:natural_scale",
    argument_scale=argument_scale,
    case_prefix="alibi", golden_file="alibi_slopes.npz",
    cases="attnconf.reference.position_cases:alibi_slopes_cases",
    families="attnconf.reference.position_cases:ALIBI_SLOPES_FAMILIES",
    adapter_method="alibi_slopes", call=call, plugin_flag="--alibi-slopes",
    function_keywords=("max_bias", "dtype"),
    function_signature="func(num_heads, *, max_bias=8.0[, dtype=...])",
)
