"""The work of one benchmark point: an operation's own count (its registry entry's `work`, whose
formulas are attnconf/flops.py's). Must not depend on the implementation measured."""
from __future__ import annotations


def point_work(operation: str, shape: dict, causal: bool = False) -> float:
    """The count for one benchmark point described by `shape` (keys B, H, L, S, E, Ev, D, …):
    the operation's own `work` (attnconf.operations), in its work_unit."""
    from attnconf import operations

    op = operations.get(operation)
    if op.work is None:
        raise ValueError(f"operation {op.name} should declare its work count to be benchmarked, but has none")
    return op.work(shape, causal)
