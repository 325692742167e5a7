"""Profile aspects of learned positions (posids.*): what a lookup does with an id outside its
table (raises | wraps | clamps | zeros | garbage). Named by the registry entry
attnconf/operations/position_ids.py (`profile=`, for both operations); run by checks.profile."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _declinable, _named, _probe

_TABLE = np.arange(1.0, 13.0).reshape(4, 3)    # 4 rows, no zero entry


def _dtype_probe(adapter, dt):
    return adapter.position_embedding(adapter.from_numpy(_TABLE, dt), adapter.index_from_numpy(np.array([[0, 3]])))


def _what(out, row_if_wrapped, row_if_clamped) -> str:
    got = np.asarray(out)[0, 1]
    for name, want in (("wraps", _TABLE[row_if_wrapped]), ("clamps", _TABLE[row_if_clamped]),
                       ("zeros", np.zeros(3))):
        if np.array_equal(got, want):
            return _named("position_embedding_out_of_range", name)
    return _named("position_embedding_out_of_range", "garbage")


@_declinable
def _out_of_range(adapter, dtype):
    """ids [[0, 4]] and [[0, −1]] into a 4-row table: both must raise (posids.lookup.range)."""
    seen = []
    for bad, wrapped, clamped in ((4, 0, 3), (-1, 3, 0)):
        ids = np.array([[0, bad]])
        out, how = _probe(adapter, lambda: adapter.position_embedding(adapter.from_numpy(_TABLE, dtype),
                                                                      adapter.index_from_numpy(ids)))
        if how.startswith("unsupported"):
            return {"value": "rejects", "evidence": how}
        if out is None:
            seen.append((bad, "raises", how))
            continue
        if out.shape != (1, 2, 3):
            seen.append((bad, _named("position_embedding_out_of_range", "garbage"), f"shape {out.shape}"))
            continue
        seen.append((bad, _what(out, wrapped, clamped), f"row read {np.asarray(out)[0, 1].tolist()}"))
    value = next((v for _, v, _ in seen if v != "raises"), "raises")
    return {"value": value, "evidence": "; ".join(f"id {b} of 4 rows: {v} ({w})" for b, v, w in seen)}


ASPECTS = (
    Aspect("position_embedding_out_of_range", "position_embedding", _out_of_range, "posids.lookup.range",
           "raises", ("rejects",)),
)

OUTPUT_DTYPE = _dtype_probe
