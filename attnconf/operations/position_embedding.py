"""The learned-position table lookup (spec/position_ids.md, posids.lookup*): the registry entry."""
from __future__ import annotations

from attnconf.operations import Operation


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.position_ids import position_embedding

    return {"output": position_embedding(inputs["table"], inputs["position_ids"])}


def natural_scale(inputs, options):
    """|table entry| read by each element (judged with k = 0, floor 0: bit-exact)."""
    import numpy as np

    return {"output": np.abs(compute(inputs, options)["output"]).astype(np.float64)}


def call(adapter, x, options, dtype):
    return adapter.position_embedding(x["table"], x["position_ids"])


# its invariants and profile aspects live in its family's modules, named once by position_ids.py
OPERATION = Operation(
    name="position_embedding", title="learned-position table lookup", spec_file="position_ids.md",
    inputs=("table", "position_ids"), index_inputs=("position_ids",), options=(), outputs=("output",),
    clauses=("posids.inputs", "posids.lookup", "posids.dtype"), dtype_clause="posids.dtype",
    reference="attnconf.operations.position_embedding:compute",
    natural_scale="attnconf.operations.position_embedding:natural_scale",
    case_prefix="posids", golden_file="position_embedding.npz",
    cases="attnconf.reference.position_cases:embedding_cases",
    families="attnconf.reference.position_cases:EMBEDDING_FAMILIES",
    adapter_method="position_embedding", call=call, plugin_flag="--position-embedding",
    function_keywords=(),
    function_signature="func(table, position_ids)",
)
