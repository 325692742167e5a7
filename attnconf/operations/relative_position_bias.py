"""T5 relative-position bias, a table lookup (spec/relative_position.md, relpos.bias): the registry entry."""
from __future__ import annotations

from attnconf.operations import Operation
from attnconf.operations.relative_position_bucket import CLAUSES, OPTIONS


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.relative_position import relative_position_bias

    return {"output": relative_position_bias(inputs["table"], **options)}


def natural_scale(inputs, options):
    """|table entry| read by each element (tol.metric; judged with k = 0, floor 0: bit-exact)."""
    import numpy as np

    return {"output": np.abs(compute(inputs, options)["output"]).astype(np.float64)}


def call(adapter, x, options, dtype):
    opts = dict(options)
    return adapter.relative_position_bias(x["table"], opts.pop("query_length"), opts.pop("key_length"), **opts)


# its invariants and profile aspects live in its family's modules, named once by relative_position_bucket.py
OPERATION = Operation(
    name="relative_position_bias", title="T5 relative-position bias", spec_file="relative_position.md",
    inputs=("table",), options=OPTIONS, outputs=("output",),
    clauses=CLAUSES + ("relpos.bias",), dtype_clause="relpos.dtype",
    reference="attnconf.operations.relative_position_bias:compute",
    natural_scale="attnconf.operations.relative_position_bias:natural_scale",
    case_prefix="relpos", golden_file="relative_position_bias.npz",
    cases="attnconf.reference.position_cases:bias_cases",
    families="attnconf.reference.position_cases:BIAS_FAMILIES",
    adapter_method="relative_position_bias", call=call, plugin_flag="--relative-position-bias",
    function_keywords=("bidirectional", "num_buckets", "max_distance", "query_offset"),
    function_signature=("func(table, query_length, key_length, *, bidirectional=True, num_buckets=32, "
                        "max_distance=128, query_offset=0)"),
)
