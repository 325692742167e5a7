"""Shaw et al.'s clipped relative-position index (spec/relative_position.md, relpos.index*): the registry entry."""
from __future__ import annotations

from attnconf.operations import Operation
from attnconf.operations.relative_position_bucket import ones_scale

OPTIONS = ("query_length", "key_length", "max_relative_position", "alignment")
from attnconf.choices import RELATIVE_INDEX_ALIGNMENTS as ALIGNMENTS  # noqa: F401 (relpos.index.align.*)


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.relative_position import relative_position_index

    return {"output": relative_position_index(**options)}


natural_scale = ones_scale("relative_position_index")


def call(adapter, x, options, dtype):
    opts = dict(options)
    return adapter.relative_position_index(opts.pop("query_length"), opts.pop("key_length"), **opts)


# its invariants and profile aspects live in its family's modules, named once by relative_position_bucket.py
OPERATION = Operation(
    name="relative_position_index", title="Shaw relative-position index", spec_file="relative_position.md",
    inputs=(), options=OPTIONS, outputs=("output",), dtypes=("int64",),
    clauses=("relpos.inputs", "relpos.index", "relpos.dtype"), dtype_clause="relpos.dtype",
    reference="attnconf.operations.relative_position_index:compute",
    natural_scale="attnconf.operations.relative_position_index:natural_scale",
    case_prefix="relpos", golden_file="relative_position_index.npz",
    cases="attnconf.reference.position_cases:index_cases",
    families="attnconf.reference.position_cases:INDEX_FAMILIES",
    adapter_method="relative_position_index", call=call, plugin_flag="--relative-position-index",
    function_keywords=("max_relative_position", "alignment"),
    function_signature="func(query_length, key_length, *, max_relative_position, alignment='top_left')",
)
