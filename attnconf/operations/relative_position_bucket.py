"""T5 relative-position buckets (spec/relative_position.md, relpos.bucket*): the registry entry.

An integer-valued operation: dtypes ("int64",), run once and judged bit-exactly. The hooks shared
by the integer operations (a natural scale of ones) live here."""
from __future__ import annotations

from attnconf.operations import Operation

OPTIONS = ("query_length", "key_length", "bidirectional", "num_buckets", "max_distance", "query_offset")
CLAUSES = ("relpos.inputs", "relpos.relative", "relpos.bucket", "relpos.bucket.exact", "relpos.dtype")


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.relative_position import relative_position_bucket

    return {"output": relative_position_bucket(**options)}


def ones_scale(op_name):
    """A natural scale of 1 per element (integers: any difference is >= 1, judged with k = 0)."""
    def scale(inputs, options):
        import numpy as np

        from attnconf import operations

        return {"output": np.ones(np.shape(operations.get(op_name).compute(inputs, options)["output"]))}
    return scale


natural_scale = ones_scale("relative_position_bucket")


def call(adapter, x, options, dtype):
    opts = dict(options)
    return adapter.relative_position_bucket(opts.pop("query_length"), opts.pop("key_length"), **opts)


OPERATION = Operation(
    # the checks of the whole family (one module each, named here only so they run once)
    invariants=("attnconf.conformance.checks.invariants.relative_position",),
    profile=("attnconf.conformance.checks.profile.relative_position",),
    name="relative_position_bucket", title="T5 relative-position buckets", spec_file="relative_position.md",
    inputs=(), options=OPTIONS, outputs=("output",), dtypes=("int64",),
    clauses=CLAUSES, dtype_clause="relpos.dtype",
    reference="attnconf.operations.relative_position_bucket:compute",
    natural_scale="attnconf.operations.relative_position_bucket:natural_scale",
    case_prefix="relpos", golden_file="relative_position_bucket.npz",
    cases="attnconf.reference.position_cases:bucket_cases",
    families="attnconf.reference.position_cases:BUCKET_FAMILIES",
    adapter_method="relative_position_bucket", call=call, plugin_flag="--relative-position-bucket",
    function_keywords=("bidirectional", "num_buckets", "max_distance", "query_offset"),
    function_signature=("func(query_length, key_length, *, bidirectional=True, num_buckets=32, "
                        "max_distance=128, query_offset=0)"),
)
