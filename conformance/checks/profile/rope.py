"""Profile aspects of rotary position embeddings (rope.*): layouts, rotation sense, partial
rotation, angle precision and YaRN conventions. Named by the registry entry
attnconf/operations/rope.py (`profile=`); run by checks.profile."""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _Declined, _alternative, _declinable, _fmt, _named, _probe, judge_table, match
from attnconf.errors import declined_message


# (operation, probe): the output-dtype probe of the first operation the adapter offers runs
# (each probe belongs to its operation, as an invariant does)
def _dtype_probe_rope(adapter, dt):
    x = np.round(np.random.default_rng(9).uniform(-1, 1, (1, 1, 3, 4)), 3)
    return adapter.rotary_embedding(adapter.from_numpy(x, dt), adapter.index_from_numpy(np.arange(3)),
                                    layout=adapter.capabilities.rope_layouts[0])


# ---------------------------------------------------------------------------------------------
# Rotary embeddings (spec rope.*)
# ---------------------------------------------------------------------------------------------
_ROPE_YARN = {"rope_type": "yarn", "factor": 16.0, "original_max_position_embeddings": 2048}


def _rope_x(seed, e=16, t=8):
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(-1, 1, (1, 2, t, e)), 3)


def _ref_rope(x, positions, **opts):
    from attnconf import reference

    return reference.compute("rotary_embedding", {"x": x, "positions": positions}, opts, exact=True)["output"]


def _rope_scale(x) -> float:
    """A bound of every output's natural scale (rope.scale): the largest pair norm, times m."""
    return float(np.sqrt(2.0) * np.abs(x).max()) * 1.3


def _run_rope(adapter, dtype, x, positions, **opts):
    """As _run_sdpa, for rotary_embedding."""
    return _probe(adapter, lambda: adapter.rotary_embedding(adapter.from_numpy(x, dtype),
                                                            adapter.index_from_numpy(positions), **opts))


def _rope_layouts(adapter, dtype):
    """Each claimed layout asked for, matched against both (positions 3 … 10, E = 16)."""
    x, pos, seen, evidence = _rope_x(20), np.arange(3, 11), {}, []
    for lay in adapter.capabilities.rope_layouts:
        other = "half" if lay == "interleaved" else "interleaved"
        try:
            out, how = _run_rope(adapter, dtype, x, pos, layout=lay)
        except _Declined as exc:        # this layout only: the other is still probed
            seen[lay] = declined_message(str(exc))
            evidence.append(f"{lay}: {seen[lay]}")
            continue
        if out is None:
            seen[lay], _ = "rejects", evidence.append(f"{lay}: {how}")
            continue
        cands = {lay: _ref_rope(x, pos, layout=lay), _alternative(f"rope.layout.{lay}", other): _ref_rope(x, pos, layout=other)}
        seen[lay], dist = match(out, cands, _rope_scale(x))
        evidence.append(f"{lay} -> {seen[lay]} ({_fmt(dist)})")
    return {"value": seen, "evidence": "requested -> detected (positions 3…10, E=16): " + "; ".join(evidence)}


@_declinable
def _rope_rotation(adapter, dtype):
    from attnconf.reference.rope import rotary_embedding_vjp

    lay, x, pos = adapter.capabilities.rope_layouts[0], _rope_x(21), np.arange(1, 9)
    out, how = _run_rope(adapter, dtype, x, pos, layout=lay)
    if out is None:
        return {"value": "rejects", "evidence": f"positions 1…8 ({lay}): {how}"}
    cands = {"by_theta": _ref_rope(x, pos, layout=lay),
             _named("rope_rotation", "reversed"): rotary_embedding_vjp(x, pos, layout=lay, exact=True)}
    value, dist = match(out, cands, _rope_scale(x))
    return {"value": value, "evidence": f"positions 1…8 ({lay}): distance to {_fmt(dist)}"}


@_declinable
def _rope_partial(adapter, dtype):
    lay, x, pos = adapter.capabilities.rope_layouts[0], _rope_x(22), np.arange(5, 13)
    out, how = _run_rope(adapter, dtype, x, pos, layout=lay, rotary_dim=8)
    if out is None:
        return {"value": "rejects", "evidence": f"rotary_dim=8 of E=16: {how}"}
    head, tail = x[..., :8], x[..., 8:]
    cands = {"leading_channels": _ref_rope(x, pos, layout=lay, rotary_dim=8),
             # base^(−2i/E) = (√base)^(−2i/r) on the first r = E/2 channels
             _named("rope_partial", "head_dim_frequencies"):
                 np.concatenate([_ref_rope(head, pos, layout=lay, base=100.0), tail], axis=-1),
             _named("rope_partial", "trailing_channels"):
                 np.concatenate([head, _ref_rope(tail, pos, layout=lay)], axis=-1),
             "rotary_dim_ignored": _ref_rope(x, pos, layout=lay)}
    value, dist = match(out, cands, _rope_scale(x))
    return {"value": value, "evidence": f"rotary_dim=8 of E=16, positions 5…12 ({lay}): distance to {_fmt(dist)}"}


def _angle_class(dtype, e_small, e_mid) -> str:
    """What the relative errors (to the pair norm) at positions 0…7 and 1000…1007 say about the
    angles: bfloat16/float16 angles or positions err by radians at 1000 (>= 0.05); float32 angles
    by ~θ·2^-24 (growing with θ); cos/sin rounded below the dtype by its eps whatever θ."""
    if e_mid >= 0.05:
        return _alternative("rope.dtype", "low_precision_angles")
    if dtype == "float64":
        if e_mid <= 2.0 ** -30:
            return "exact"
        return _alternative("rope.dtype", "float32_angles" if e_mid > 8 * e_small else "cos_sin_below_dtype")
    if dtype == "float32" and e_small > 2.0 ** -14:
        return _alternative("rope.dtype", "cos_sin_below_dtype")
    return "exact" if e_mid <= 2.0 ** -40 else _alternative("rope.dtype", "float32_angles")


def _rope_angle_precision(adapter, dtype):
    """Per supported dtype: the angles' precision class (rope.dtype), from errors to the exact value."""
    caps, seen = adapter.capabilities, {}
    x, pos = _rope_x(23, e=8, t=16), np.concatenate([np.arange(8), 1000 + np.arange(8)])
    lay = caps.rope_layouts[0]
    norm = np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-3)
    for dt in caps.dtypes:
        try:
            from attnconf.reference.rounding import to_dtype

            xd = np.asarray(to_dtype(x, dt), np.float64)
            out, how = _run_rope(adapter, dt, xd, pos, layout=lay)
        except _Declined as exc:
            seen[dt] = declined_message(str(exc))
            continue
        if out is None:
            seen[dt] = how
            continue
        err = np.abs(out - _ref_rope(xd, pos, layout=lay)) / norm
        seen[dt] = _angle_class(dt, float(np.max(err[..., :8, :])), float(np.max(err[..., 8:, :])))
    return {"value": seen, "evidence": "angle precision per dtype (positions 0…7 and 1000…1007, E=8): "
            + ", ".join(f"{d}: {v}" for d, v in seen.items())}


def _rope_angles_conform(dtype: str, value: str) -> bool:
    """rope.dtype: float64 x MUST get exact (float64) angles; below float64 float32 angles are the
    baseline; low-precision angles and cos/sin below the dtype never conform."""
    return value == "exact" or (dtype != "float64" and value == "float32_angles")


@_declinable
def _rope_yarn(adapter, dtype, what):
    if "yarn" not in adapter.capabilities.rope_scaling:
        return {"value": "unsupported", "evidence": "the adapter does not accept rope_type 'yarn'"}
    lay, x = adapter.capabilities.rope_layouts[0], _rope_x(24)
    # truncate: positions 3000…3007, where the floor/ceil of the correction range moves ω_5 by
    # 7e-4 (radians at p ~ 3000); attention factor: positions 0…7, where it does not matter
    # (each probe fixes the other convention explicitly, so that it sees only its own)
    pos = 3000 + np.arange(8) if what == "truncate" else np.arange(8)
    asked = dict(_ROPE_YARN, attention_factor=1.0) if what == "truncate" else dict(_ROPE_YARN, truncate=True)
    out, how = _run_rope(adapter, dtype, x, pos, layout=lay, scaling=dict(asked))
    if out is None:
        return {"value": "rejects", "evidence": f"yarn {asked}: {how}"}
    if what == "truncate":
        cands = {"truncate": _ref_rope(x, pos, layout=lay, scaling=dict(asked, truncate=True)),
                 _named("rope_yarn_truncate", "truncate_false_default"):
                     _ref_rope(x, pos, layout=lay, scaling=dict(asked, truncate=False))}
    else:
        cands = {"applied": _ref_rope(x, pos, layout=lay, scaling=dict(asked)),
                 _named("rope_yarn_attention_factor", "no_attention_factor"):
                     _ref_rope(x, pos, layout=lay, scaling=dict(asked, attention_factor=1.0))}
    value, dist = match(out, cands, _rope_scale(x))
    return {"value": value, "evidence": f"yarn {asked} (no {'truncate' if what == 'truncate' else 'attention_factor'}"
            f" given), positions {int(pos[0])}…{int(pos[-1])} ({lay}): distance to {_fmt(dist)}"}


def _judge_layouts(adapter, found):
    evidence = found["evidence"]
    return judge_table(adapter, found, clause=lambda lay: f"rope.layout.{lay}", wrong=lambda lay, got: (
        f"rope.layout.{lay}: asked for layout {lay!r}, the rotation matches {got!r} ({evidence})"))


def _judge_angles(adapter, found):
    value, evidence = found["value"], found["evidence"]
    bad = {d: v for d, v in value.items() if not v.startswith(("unsupported", "declined", "raised"))
           and not _rope_angles_conform(d, v)}
    msg = ("rope.dtype: " + ", ".join(f"{d} x gets {v}" for d, v in bad.items()) + f" ({evidence})") if bad else ""
    return [("", "rope.dtype", "fail" if bad else "pass", msg, value, ())]


ASPECTS = (
    Aspect("rope_layouts", "rotary_embedding", _rope_layouts, judge=_judge_layouts,
           ids=lambda caps: ("interleaved", "half") if caps is None else caps.rope_layouts),
    Aspect("rope_rotation", "rotary_embedding", _rope_rotation, "rope.rotation", "by_theta", ("rejects",)),
    Aspect("rope_partial", "rotary_embedding", _rope_partial, "rope.partial", "leading_channels", ("rejects",)),
    Aspect("rope_angle_precision", "rotary_embedding", _rope_angle_precision, judge=_judge_angles),
    Aspect("rope_yarn_truncate", "rotary_embedding", lambda adapter, dtype: _rope_yarn(adapter, dtype, "truncate"),
           "rope.scaling.yarn", "truncate", ("unsupported", "rejects")),
    Aspect("rope_yarn_attention_factor", "rotary_embedding",
           lambda adapter, dtype: _rope_yarn(adapter, dtype, "attention_factor"),
           "rope.scaling.yarn", "applied", ("unsupported", "rejects")),
)

OUTPUT_DTYPE = _dtype_probe_rope
