"""Profile aspects of RoPE from given caches (rope.cache.*): which pairing each layout asked for
gives (half, interleaved), and which channels pass through with a rotary dimension below E.
Named by the registry entry attnconf/operations/rope_cache.py (`profile=`); run by checks.profile."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _declinable, _fmt, _named, _probe, match


def _inputs(seed, e=8, r=8, n=12):
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-1, 1, (2, 2, 5, e)), 3)
    cos, sin = np.round(rng.uniform(-1, 1, (n, r // 2)), 3), np.round(rng.uniform(-1, 1, (n, r // 2)), 3)
    return x, cos, sin, rng.integers(0, n, (2, 5))


def _ref(x, cos, sin, ids, **opts):
    from attnconf import reference

    return reference.compute("rope_cache", {"x": x, "cos_cache": cos, "sin_cache": sin, "position_ids": ids},
                             opts, exact=True)["output"]


def _run(adapter, dtype, x, cos, sin, ids, **opts):
    return _probe(adapter, lambda: adapter.rope_cache(adapter.from_numpy(x, dtype), adapter.from_numpy(cos, dtype),
                                                      adapter.from_numpy(sin, dtype), adapter.index_from_numpy(ids),
                                                      **opts))


def _pairing(asked):
    other = "interleaved" if asked == "half" else "half"

    @_declinable
    def probe(adapter, dtype):
        x, cos, sin, ids = _inputs(30)
        out, how = _run(adapter, dtype, x, cos, sin, ids, layout=asked)
        if out is None:
            return {"value": "rejects", "evidence": f"layout={asked!r}: {how}"}
        cands = {asked: _ref(x, cos, sin, ids, layout=asked),
                 _named(f"rope_cache_{asked}", other): _ref(x, cos, sin, ids, layout=other)}
        value, dist = match(out, cands, 2.0 * np.abs(x).max())
        return {"value": value, "evidence": f"layout={asked!r}, random tables: distance to {_fmt(dist)}"}
    return probe


@_declinable
def _pass_through(adapter, dtype):
    x, cos, sin, ids = _inputs(31, e=8, r=4)
    lay = "half"
    out, how = _run(adapter, dtype, x, cos, sin, ids, layout=lay, rotary_dim=4)
    if out is None:
        lay = "interleaved"
        out, how = _run(adapter, dtype, x, cos, sin, ids, layout=lay, rotary_dim=4)
    if out is None:
        return {"value": "rejects", "evidence": f"rotary_dim=4 of E=8: {how}"}
    head, tail = x[..., :4], x[..., 4:]
    cands = {"leading_channels": _ref(x, cos, sin, ids, layout=lay, rotary_dim=4),
             _named("rope_cache_pass_through", "trailing_channels"):
                 np.concatenate([head, _ref(tail, cos, sin, ids, layout=lay)], axis=-1)}
    value, dist = match(out, cands, 2.0 * np.abs(x).max())
    return {"value": value, "evidence": f"rotary_dim=4 of E=8 ({lay}): distance to {_fmt(dist)}"}


def _dtype_probe(adapter, dt):
    x, cos, sin, ids = _inputs(32)
    return adapter.rope_cache(adapter.from_numpy(x, dt), adapter.from_numpy(cos, dt), adapter.from_numpy(sin, dt),
                              adapter.index_from_numpy(ids), layout="half")


ASPECTS = (
    Aspect("rope_cache_half", "rope_cache", _pairing("half"), "rope.cache.half", "half", ("rejects",)),
    Aspect("rope_cache_interleaved", "rope_cache", _pairing("interleaved"), "rope.cache.interleaved", "interleaved",
           ("rejects",)),
    Aspect("rope_cache_pass_through", "rope_cache", _pass_through, "rope.cache.partial", "leading_channels",
           ("rejects",)),
)

OUTPUT_DTYPE = _dtype_probe
