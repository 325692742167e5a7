"""Profile aspects of relative positions (relpos.*): whether T5 buckets take the floor of the exact
real number or of a float32 logarithm at exact boundaries, and Shaw's alignment when L ≠ S. Named by
the registry entry attnconf/operations/relative_position_bucket.py (`profile=`, for the three
relative-position operations); run by checks.profile."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _alternative, _declinable, _probe, judge_table

# 48 causal buckets, max_distance 81: 1.5 = (81/24)^(1/3) puts n = 36 and 54 exactly on bucket
# boundaries 32 and 40 (relpos.bucket.exact); 96 bidirectional buckets: the same on both sides
_PROBES = ((dict(bidirectional=False, num_buckets=48, max_distance=81), 64, 1),
           (dict(bidirectional=True, num_buckets=96, max_distance=81), 60, 60))


def _dtype_probe(adapter, dt):
    table = np.arange(8 * 2, dtype=np.float64).reshape(8, 2) / 4
    return adapter.relative_position_bias(adapter.from_numpy(table, dt), 2, 3, bidirectional=True,
                                          num_buckets=8, max_distance=16, query_offset=0)


def _exact(L, S, opts):
    from attnconf.reference.relative_position import relative_position_bucket

    return relative_position_bucket(L, S, **opts)


@_declinable
def _boundaries(adapter, dtype):
    diffs = []
    for opts, L, S in _PROBES:
        out, how = _probe(adapter, lambda: adapter.relative_position_bucket(L, S, query_offset=0, **opts))
        if out is None:
            return {"value": "rejects", "evidence": f"{opts}: {how}"}
        want = _exact(L, S, opts)
        if out.shape != want.shape:
            return {"value": "other", "evidence": f"{opts}: shape {out.shape}, expected {want.shape}"}
        bad = out != want
        rel = np.arange(S)[None, :] - np.arange(L)[:, None]
        diffs += [(opts["num_buckets"], int(r), int(o), int(w)) for r, o, w in zip(rel[bad], out[bad], want[bad])]
    if not diffs:
        return {"value": "exact", "evidence": "48 causal and 96 bidirectional buckets at max_distance 81: every "
                "bucket the floor of the exact real number, the boundaries n = 36 and 54 included"}
    seen = sorted({abs(r) for _, r, _, _ in diffs})
    low = all(o == w - 1 for _, _, o, w in diffs) and set(seen) <= {36, 54}
    value = _alternative("relpos.bucket.exact", "float32_log") if low else "other"
    shown = ", ".join(f"nb {nb} rel {r}: {o} (exact {w})" for nb, r, o, w in diffs[:4])
    return {"value": value, "evidence": f"{len(diffs)} buckets differ, at distances {seen}: {shown}"}


@_declinable
def _index_alignment(adapter, dtype):
    from attnconf.reference.relative_position import relative_position_index

    seen, evidence = {}, []
    for align in adapter.capabilities.relative_index_alignments:
        other = "top_left" if align == "bottom_right" else "bottom_right"
        out, how = _probe(adapter, lambda: adapter.relative_position_index(3, 8, max_relative_position=3,
                                                                           alignment=align))
        if out is None:
            seen[align], _ = "rejects", evidence.append(f"{align}: {how}")
            continue
        cands = {align: relative_position_index(3, 8, max_relative_position=3, alignment=align),
                 _alternative(f"relpos.index.align.{align}", other):
                     relative_position_index(3, 8, max_relative_position=3, alignment=other)}
        seen[align] = next((n for n, c in cands.items() if out.shape == c.shape and np.array_equal(out, c)), "other")
        evidence.append(f"{align} -> {seen[align]}")
    return {"value": seen, "evidence": "requested -> detected (L=3, S=8, K=3): " + "; ".join(evidence)}


def _judge_index_alignment(adapter, found):
    return judge_table(adapter, found, clause=lambda key: f"relpos.index.align.{key}",
                       wrong=lambda key, got: f"relpos.index.align.{key}: asked for {key}, the index is aligned {got}")


ASPECTS = (
    Aspect("relative_position_bucket_boundaries", "relative_position_bucket", _boundaries, "relpos.bucket.exact",
           "exact", ("rejects",)),
    Aspect("relative_position_index_alignment", "relative_position_index", _index_alignment,
           judge=_judge_index_alignment,
           ids=lambda caps: caps.relative_index_alignments if caps is not None else ("top_left", "bottom_right")),
)

OUTPUT_DTYPE = _dtype_probe
