"""Learned-position ids from an attention mask (spec/position_ids.md, posids.ids.*): the registry entry."""
from __future__ import annotations

from attnconf.operations import Operation
from attnconf.operations.relative_position_bucket import ones_scale

OPTIONS = ("scheme", "past_length", "padding_idx")
from attnconf.choices import POSITION_ID_SCHEMES as SCHEMES  # noqa: F401 (posids.ids.*)


def compute(inputs, options, *, precision=None, exact=False):
    from attnconf.reference.position_ids import position_ids

    return {"output": position_ids(inputs["attention_mask"], **options)}


natural_scale = ones_scale("position_ids")


def call(adapter, x, options, dtype):
    return adapter.position_ids(x["attention_mask"], **options)


OPERATION = Operation(
    # the checks of the whole family (one module each, named here only so they run once)
    invariants=("attnconf.conformance.checks.invariants.position_ids",),
    profile=("attnconf.conformance.checks.profile.position_ids",),
    name="position_ids", title="learned-position ids", spec_file="position_ids.md",
    inputs=("attention_mask",), index_inputs=("attention_mask",), options=OPTIONS, outputs=("output",),
    dtypes=("int64",), clauses=("posids.inputs", "posids.dtype"), dtype_clause="posids.dtype",
    reference="attnconf.operations.position_ids:compute",
    natural_scale="attnconf.operations.position_ids:natural_scale",
    case_prefix="posids", golden_file="position_ids.npz",
    cases="attnconf.reference.position_cases:position_id_cases",
    families="attnconf.reference.position_cases:POSITION_ID_FAMILIES",
    adapter_method="position_ids", call=call, plugin_flag="--position-ids",
    function_keywords=("scheme", "past_length", "padding_idx"),
    function_signature="func(attention_mask, *, scheme, past_length=0, padding_idx=1)",
)
