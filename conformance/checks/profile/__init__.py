"""Semantic profile: which named alternative of each spec choice an implementation follows.

`detect(adapter)` runs small probes whose outcomes under the spec's named alternatives differ
by O(1), and matches the implementation's output against the reference evaluated under each
alternative (attnconf.reference.compute with the alternative's options, or with inputs
transformed the way the alternative reads them). It is a description, not a verdict:
{aspect: {"value": <alternative name>, "evidence": <what was seen>}}.

`profile_records(adapter, profile)` turns each aspect with a canonical choice into a results
record (check="profile"): pass when the value is canonical, skip when the adapter declared the
feature unsupported, fail otherwise (expectations may turn that fail into xfail).

Matching tolerance: alternatives differ by at least ~0.1 x the natural scale on these probes, a
correct kernel by at most ~1e-2 of it even in bfloat16, so a candidate matches when the output
is within MATCH_RTOL = 1e-2 of the natural scale bound max|v| (plus NaN matching NaN).
Must not import any framework.
"""
from __future__ import annotations

import numpy as np

from attnconf.errors import Unsupported, declined_message, declined_reason

MATCH_RTOL = 1e-2

# aspect -> (clause, canonical value, values that mean "declared unsupported" -> skip)
CANONICAL = {
    "fully_masked": ("sdpa.fully_masked", "zero", ("rejects",)),
    "causal_alignment": ("sdpa.causal.top_left", "top_left", ("rejects",)),
    "causal_bottom_right": ("sdpa.causal.bottom_right", "bottom_right", ("rejects",)),
    "mask_and_causal": ("sdpa.mask_and_causal", "intersect", ("rejects",)),
    "mask_polarity": ("sdpa.mask.bool", "true_attends", ("unsupported",)),
    "gqa": ("sdpa.gqa", "repeat_interleave", ("unsupported",)),
    "value_dim": ("sdpa.value_dim", "supported", ("rejects",)),
    "default_scale": ("sdpa.scale.default", "1/sqrt(E)", ()),
    "determinism": ("inv.determinism", "deterministic", ()),
    "encoding_offset": ("enc.positions", "supported", ("rejects",)),
    "rope_rotation": ("rope.rotation", "by_theta", ("rejects",)),
    "rope_partial": ("rope.partial", "leading_channels", ("rejects",)),
    "rope_yarn_truncate": ("rope.scaling.yarn", "truncate", ("unsupported", "rejects")),
    "rope_yarn_attention_factor": ("rope.scaling.yarn", "applied", ("unsupported", "rejects")),
}


def _named(aspect: str, name: str) -> str:
    """`name`, a named alternative of the aspect's clause as spec/index.json writes it: a probe
    reports a divergence the spec names under the index's name (the index is normative), so a
    rename there fails every probe here instead of drifting. Other values (e.g. "ignored",
    "other") describe what was seen and are not the spec's names."""
    return _alternative(CANONICAL[aspect][0], name, aspect)


def _alternative(clause: str, name: str, aspect: str | None = None) -> str:
    """`name`, checked to be a named alternative of `clause` in spec/index.json (as _named)."""
    from attnconf import spec

    known = spec.clause(clause)["alternatives"]
    if name not in known:
        raise ValueError(f"profile value {name!r} of aspect {aspect or clause} should be an alternative spec/index.json "
                         f"names for {clause} ({', '.join(known) or 'none'}), but it is not")
    return name


def probe_dtype(adapter) -> str:
    dtypes = adapter.capabilities.dtypes
    return "float64" if "float64" in dtypes else "float32" if "float32" in dtypes else dtypes[0]


# ---------------------------------------------------------------------------------------------
# Running and matching
# ---------------------------------------------------------------------------------------------
class _Declined(Exception):
    """The implementation raised NotImplementedError on a probe: the aspect is declined."""


def _declinable(probe):
    """A probe whose call the plug-in declines reports {"value": "declined", "evidence": reason}
    (profile_records: skip "declined: reason"), not what a refusal of the option would mean."""
    import functools

    @functools.wraps(probe)
    def run(*args, **kwargs):
        try:
            return probe(*args, **kwargs)
        except _Declined as exc:
            return {"value": "declined", "evidence": str(exc)}
    return run


def _run_sdpa(adapter, dtype, q, k, v, mask=None, **opts):
    """(output float64 | None, outcome) with outcome "ok", "unsupported: …" or "raised: …";
    _Declined when the implementation raises NotImplementedError."""
    def call():
        args = [adapter.from_numpy(a, dtype) for a in (q, k, v)]
        m = None if mask is None else adapter.mask_from_numpy(mask, dtype)
        return adapter.sdpa(*args, attn_mask=m, **opts)

    return _probe(adapter, call)


def _probe(adapter, call):
    """(output float64 | None, outcome) of one probe call: "ok", "unsupported: …" or
    "raised …"; _Declined when the implementation raises NotImplementedError."""
    try:
        return np.asarray(adapter.to_numpy(call())).astype(np.float64), "ok"
    except Unsupported as exc:
        return None, f"unsupported: {exc.reason}"
    except NotImplementedError as exc:
        raise _Declined(declined_reason(exc)) from None
    except Exception as exc:  # the implementation's own error for this input
        return None, f"raised {type(exc).__name__}: {exc}"


def _ref(q, k, v, mask=None, **opts) -> np.ndarray:
    from attnconf import reference

    inputs = {"query": q, "key": k, "value": v}
    if mask is not None:
        inputs["attn_mask"] = mask
    return reference.compute("sdpa", inputs, opts)["output"]


def match(out: np.ndarray, candidates: dict, scale: float) -> tuple[str, dict]:
    """The first candidate `out` matches (NaN matches NaN), else "other"; and the distances."""
    dist = {}
    for name, cand in candidates.items():
        cand = np.asarray(cand, np.float64)
        if cand.shape != out.shape:
            dist[name] = "shape differs"
            continue
        with np.errstate(invalid="ignore"):
            d = np.where(np.isnan(cand) & np.isnan(out), 0.0, np.abs(out - cand))
        worst = float(np.max(np.where(np.isnan(d), np.inf, d))) if d.size else 0.0
        dist[name] = worst
    for name, worst in dist.items():
        if isinstance(worst, float) and worst <= MATCH_RTOL * scale:
            return name, dist
    return "other", dist


def _fmt(dist: dict) -> str:
    return ", ".join(f"{n}: {d:.3g}" if isinstance(d, float) else f"{n}: {d}" for n, d in dist.items())


def _arrays(seed, b=1, h=1, hkv=1, l=3, s=5, e=4, ev=None, spread=1.0):
    rng = np.random.default_rng(seed)
    q = np.round(rng.uniform(-spread, spread, (b, h, l, e)), 3)
    k = np.round(rng.uniform(-spread, spread, (b, hkv, s, e)), 3)
    v = np.round(rng.uniform(-1, 1, (b, hkv, s, ev or e)) + rng.uniform(1, 2, (1, 1, 1, ev or e)), 3)
    return q, k, v, rng


def _mask_for(adapter, m: np.ndarray):
    kinds = adapter.capabilities.mask_kinds
    if "bool" in kinds:
        return m
    return np.where(m, 0.0, -np.inf) if "float" in kinds else None


# ---------------------------------------------------------------------------------------------
# SDPA aspects
# ---------------------------------------------------------------------------------------------
@_declinable
def _fully_masked(adapter, dtype):
    q, k, v, _ = _arrays(1)
    m = np.ones((1, 1, 3, 5), bool)
    m[..., 1, :] = False
    mask = _mask_for(adapter, m)
    if mask is None:
        return {"value": "rejects", "evidence": "the adapter takes no attn_mask"}
    out, how = _run_sdpa(adapter, dtype, q, k, v, mask)
    if out is None:
        return {"value": "rejects", "evidence": how}
    row = out[0, 0, 1]
    cands = {"zero": np.zeros_like(row), _named("fully_masked", "uniform"): v[0, 0].mean(axis=0),
             _named("fully_masked", "nan"): np.full_like(row, np.nan)}
    value, dist = match(row, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"fully-masked row gave {np.round(row, 4).tolist()} "
            f"(distance to {_fmt(dist)}); claimed {adapter.capabilities.fully_masked!r}"}


@_declinable
def _causal(adapter, dtype, requested):
    q, k, v, _ = _arrays(2, l=3, s=6)
    out, how = _run_sdpa(adapter, dtype, q, k, v, is_causal=True, causal_alignment=requested)
    if out is None:
        return {"value": "rejects", "evidence": f"causal_alignment={requested!r}, L=3, S=6: {how}"}
    cands = {a: _ref(q, k, v, is_causal=True, causal_alignment=a) for a in ("top_left", "bottom_right")}
    cands["not_causal"] = _ref(q, k, v)
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"is_causal with causal_alignment={requested!r}, L=3, S=6: "
            f"distance to {_fmt(dist)}"}


@_declinable
def _mask_and_causal(adapter, dtype):
    q, k, v, rng = _arrays(3, l=5, s=5)
    m = rng.random((1, 1, 5, 5)) < 0.5
    m[..., 0] = True
    m |= ~np.tril(np.ones((5, 5), bool))           # the mask opens the future, causal must close it
    mask = _mask_for(adapter, m)
    if mask is None:
        return {"value": "rejects", "evidence": "the adapter takes no attn_mask"}
    out, how = _run_sdpa(adapter, dtype, q, k, v, mask, is_causal=True)
    if out is None:
        value = "rejects" if how.startswith("unsupported") else _named("mask_and_causal", "error")
        return {"value": value, "evidence": f"attn_mask with is_causal=True: {how}"}
    cands = {"intersect": _ref(q, k, v, m, is_causal=True), "mask_only": _ref(q, k, v, m),
             "causal_only": _ref(q, k, v, is_causal=True)}
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"attn_mask with is_causal=True: distance to {_fmt(dist)}"}


@_declinable
def _mask_polarity(adapter, dtype):
    if "bool" not in adapter.capabilities.mask_kinds:
        return {"value": "unsupported", "evidence": "no bool attn_mask"}
    q, k, v, rng = _arrays(4, l=4, s=6)
    m = rng.random((1, 1, 4, 6)) < 0.5
    m[..., 0], m[..., 1] = True, False               # both polarities leave every row a visible key
    out, how = _run_sdpa(adapter, dtype, q, k, v, m)
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": how}
    cands = {"true_attends": _ref(q, k, v, m), _named("mask_polarity", "true_means_masked"): _ref(q, k, v, ~m),
             "ignored": _ref(q, k, v)}
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"bool mask: distance to {_fmt(dist)}"}


@_declinable
def _gqa(adapter, dtype):
    q, k, v, _ = _arrays(5, h=4, hkv=2, l=3, s=5)
    out, how = _run_sdpa(adapter, dtype, q, k, v, enable_gqa=True)
    if out is None:
        return {"value": "unsupported", "evidence": f"H=4, Hkv=2, enable_gqa=True: {how}"}
    cands = {"repeat_interleave": _ref(q, k, v, enable_gqa=True),
             _named("gqa", "tile"): _ref(q, np.tile(k, (1, 2, 1, 1)), np.tile(v, (1, 2, 1, 1)))}
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"H=4, Hkv=2: distance to {_fmt(dist)}"}


@_declinable
def _value_dim(adapter, dtype):
    q, k, v, _ = _arrays(6, e=4, ev=7)
    out, how = _run_sdpa(adapter, dtype, q, k, v)
    if out is None:
        return {"value": "rejects", "evidence": f"E=4, Ev=7: {how}"}
    value, dist = match(out, {"supported": _ref(q, k, v)}, float(np.abs(v).max()))
    return {"value": value, "evidence": f"E=4, Ev=7: distance to {_fmt(dist)}"}


@_declinable
def _default_scale(adapter, dtype):
    ev = 9 if adapter.capabilities.value_dim_differs else 4
    q, k, v, _ = _arrays(7, e=4, ev=ev, l=4, s=6, spread=2.0)
    try:
        out, how = _run_sdpa(adapter, dtype, q, k, v)
    except _Declined:        # declining Ev != E: the probe still runs with Ev == E
        if ev == 4:
            raise
        out, how = None, "declined"
    if out is None and ev != 4:
        ev = 4
        q, k, v, _ = _arrays(7, e=4, ev=ev, l=4, s=6, spread=2.0)
        out, how = _run_sdpa(adapter, dtype, q, k, v)
    if out is None:
        return {"value": "other", "evidence": f"E=4, Ev={ev}, scale=None: {how}"}
    value_dim = _named("default_scale", "value_dim")        # 1/sqrt(Ev)
    cands = {"1/sqrt(E)": _ref(q, k, v), value_dim: _ref(q, k, v, scale=1 / np.sqrt(ev)),
             "1/E": _ref(q, k, v, scale=0.25), "1": _ref(q, k, v, scale=1.0)}
    if ev == 4:
        cands.pop(value_dim)
    value, dist = match(out, cands, float(np.abs(v).max()))
    return {"value": value, "evidence": f"E=4, Ev={ev}, scale=None: distance to {_fmt(dist)}"}


def _dtype_probe_sdpa(adapter, dt):
    q, k, v, _ = _arrays(8)
    return adapter.sdpa(*(adapter.from_numpy(a, dt) for a in (q, k, v)))


def _dtype_probe_encoding(adapter, dt):
    return adapter.sinusoidal_encoding(4, 4, dtype=dt)


def _dtype_probe_mha(adapter, dt):
    from attnconf.conformance import invariants as inv

    ex = {"B": 1, "L": 3, "S": 3, "H": 1, "E": 2, "Ev": 2, "D": 2, "Dkv": 2, "cross": False, "bias": False, "seed": 0}
    x, _, w = inv.gen.mha_arrays(ex, dt)
    return adapter.multi_head_attention(adapter.from_numpy(x, dt), adapter.from_numpy(x, dt),
                                        {n: adapter.from_numpy(a, dt) for n, a in w.items()}, num_heads=1)


# (operation, probe): the output-dtype probe of the first operation the adapter offers runs
# (each probe belongs to its operation, as an invariant does)
def _dtype_probe_rope(adapter, dt):
    x = np.round(np.random.default_rng(9).uniform(-1, 1, (1, 1, 3, 4)), 3)
    return adapter.rotary_embedding(adapter.from_numpy(x, dt), adapter.index_from_numpy(np.arange(3)),
                                    layout=adapter.capabilities.rope_layouts[0])


OUTPUT_DTYPE_PROBES = (("sdpa", _dtype_probe_sdpa), ("sinusoidal_encoding", _dtype_probe_encoding),
                       ("multi_head_attention", _dtype_probe_mha), ("rotary_embedding", _dtype_probe_rope))


def _output_dtypes(adapter):
    caps, seen = adapter.capabilities, {}
    probe = next((fn for op, fn in OUTPUT_DTYPE_PROBES if op in caps.operations), None)
    for dt in caps.dtypes if probe is not None else ():
        try:
            out = probe(adapter, dt)
            seen[dt] = str(np.asarray(adapter.to_numpy(out)).dtype)
        except Unsupported as exc:
            seen[dt] = f"unsupported: {exc.reason}"
        except NotImplementedError as exc:
            seen[dt] = declined_message(declined_reason(exc))
        except Exception as exc:
            seen[dt] = f"raised {type(exc).__name__}"
    same = all(seen[d] == d for d in seen)
    return {"value": seen, "evidence": "output dtype equals input dtype for every supported dtype" if same
            else "output dtype differs from the input dtype: " + ", ".join(f"{d} -> {o}" for d, o in seen.items() if o != d)}


def _determinism(adapter, dtype):
    from attnconf.conformance.invariants import check_determinism

    rec = check_determinism(adapter, dtype)
    if rec["status"] == "skip" and rec["message"].startswith(declined_message("")):
        return {"value": "declined", "evidence": rec["message"][len(declined_message("")):]}
    if rec["status"] == "skip":
        return {"value": "unknown", "evidence": rec["message"]}
    if rec["status"] == "error":
        return {"value": "unknown", "evidence": rec["message"]}
    same = rec["metrics"].get("identical", False)
    return {"value": "deterministic" if same else "nondeterministic",
            "evidence": f"{rec['operation']} twice on identical inputs at {dtype}: "
            + ("bitwise identical" if same else rec["message"])}


# ---------------------------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------------------------
_VARIANTS = [(lay, fr) for lay in ("interleaved", "concat", "cos_first") for fr in ("vaswani", "t2t")]


def _ref_table(n, dim, **opts):
    from attnconf import reference

    return reference.compute("sinusoidal_encoding", {}, dict(num_positions=n, dim=dim, **opts))["output"]


def _run_table(adapter, dtype, n, dim, **opts):
    return _probe(adapter, lambda: adapter.sinusoidal_encoding(n, dim, dtype=dtype, **opts))


def _encoding_variants(adapter, dtype):
    caps, seen, evidence = adapter.capabilities, {}, []
    for lay in caps.encoding_layouts:
        for fr in caps.encoding_frequencies:
            key = f"{lay}/{fr}"
            try:
                out, how = _run_table(adapter, dtype, 64, 8, layout=lay, frequencies=fr)
            except _Declined as exc:    # this variant only: the others are still probed
                seen[key] = declined_message(str(exc))
                evidence.append(f"{key}: {seen[key]}")
                continue
            if out is None:
                seen[key] = "rejects"
                evidence.append(f"{key}: {how}")
                continue
            cands = {f"{a}/{b}": _ref_table(64, 8, layout=a, frequencies=b) for a, b in _VARIANTS}
            value, _ = match(out, {key: cands.pop(key), **cands}, 1.0)
            seen[key] = value
            evidence.append(f"{key} -> {value}")
    return {"value": seen, "evidence": "requested -> detected (64 positions, d=8): " + "; ".join(evidence)}


@_declinable
def _encoding_offset(adapter, dtype):
    lay, fr = adapter.capabilities.encoding_layouts[0], adapter.capabilities.encoding_frequencies[0]
    out, how = _run_table(adapter, dtype, 8, 8, offset=5, layout=lay, frequencies=fr)
    if out is None:
        return {"value": "rejects", "evidence": f"offset=5: {how}"}
    cands = {name: _ref_table(8, 8, offset=o, layout=lay, frequencies=fr)
             for name, o in (("supported", 5), ("ignored", 0), ("off_by_one_up", 6), ("off_by_one_down", 4))}
    value, dist = match(out, cands, 1.0)
    return {"value": value, "evidence": f"offset=5 ({lay}/{fr}): distance to {_fmt(dist)}"}


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


# ---------------------------------------------------------------------------------------------
# Public
# ---------------------------------------------------------------------------------------------
SDPA_ASPECTS = ("fully_masked", "causal_alignment", "causal_bottom_right", "mask_and_causal",
                "mask_polarity", "gqa", "value_dim", "default_scale")
ENCODING_ASPECTS = ("encoding_variants", "encoding_offset")
ROPE_ASPECTS = ("rope_layouts", "rope_rotation", "rope_partial", "rope_angle_precision", "rope_yarn_truncate",
                "rope_yarn_attention_factor")
COMMON_ASPECTS = ("output_dtype", "determinism")


# (operation, its aspects): each aspect belongs to one operation, as an invariant does, and is
# probed when the adapter offers that operation; the common aspects when it offers any. Their
# records are filed under the first operation here (sdpa), which is what they have always named.
OPERATION_ASPECTS = (("sdpa", SDPA_ASPECTS), ("sinusoidal_encoding", ENCODING_ASPECTS),
                     ("rotary_embedding", ROPE_ASPECTS))

_PROBES = {
    "fully_masked": _fully_masked,
    "causal_alignment": lambda adapter, dtype: _causal(adapter, dtype, "top_left"),
    "causal_bottom_right": lambda adapter, dtype: _causal(adapter, dtype, "bottom_right"),
    "mask_and_causal": _mask_and_causal, "mask_polarity": _mask_polarity, "gqa": _gqa,
    "value_dim": _value_dim, "default_scale": _default_scale,
    "encoding_variants": _encoding_variants, "encoding_offset": _encoding_offset,
    "output_dtype": lambda adapter, dtype: _output_dtypes(adapter), "determinism": _determinism,
    "rope_layouts": _rope_layouts, "rope_rotation": _rope_rotation, "rope_partial": _rope_partial,
    "rope_angle_precision": _rope_angle_precision,
    "rope_yarn_truncate": lambda adapter, dtype: _rope_yarn(adapter, dtype, "truncate"),
    "rope_yarn_attention_factor": lambda adapter, dtype: _rope_yarn(adapter, dtype, "attention_factor"),
}


def aspects_for(adapter) -> tuple[str, ...]:
    """The aspects `detect` reports for this adapter (from its operations, without running it)."""
    ops = adapter.capabilities.operations
    return sum((aspects for op, aspects in OPERATION_ASPECTS if op in ops), ()) + (COMMON_ASPECTS if ops else ())


def _operation_of(aspect: str) -> str:
    """The operation an aspect's records name (encoding_variants/<key>: encoding_variants')."""
    head = aspect.split("/")[0]
    return next((op for op, aspects in OPERATION_ASPECTS if head in aspects), OPERATION_ASPECTS[0][0])


def detect(adapter) -> dict:
    """{aspect: {"value", "evidence"}} for every aspect the adapter's operations allow."""
    dtype = probe_dtype(adapter)
    return {aspect: _PROBES[aspect](adapter, dtype) for aspect in aspects_for(adapter)}


def _record(adapter, aspect, clause, status, message, value, *, also=()):
    """A profile aspect's record (a Record's JSON form); also: clauses it cites after `clause`."""
    from attnconf.conformance import repro
    from attnconf.conformance.record import Record

    name = getattr(adapter, "name", type(adapter).__name__)
    return Record(adapter=name, framework=getattr(adapter, "framework", ""), operation=_operation_of(aspect),
                  case=f"profile/{aspect}", clauses=[clause, *also], dtype=probe_dtype(adapter),
                  check="profile", status=status, metrics={"value": value}, message=message,
                  repro=repro.command(repro.adapter_args(adapter), f"profile/{aspect}", probe_dtype(adapter)),
                  duration_s=0.0, options={}, shapes={}).to_json()


def record_ids(adapter=None) -> list[str]:
    """The case ids of the records profile_records makes for `adapter` (None: for any adapter),
    known without running it: what `attnconf run --select` can select."""
    if adapter is None:
        aspects, variants = sum((a for _, a in OPERATION_ASPECTS), ()) + COMMON_ASPECTS, _VARIANTS
        layouts = ("interleaved", "half")
    else:
        caps = adapter.capabilities
        aspects = aspects_for(adapter)
        variants = [(lay, fr) for lay in caps.encoding_layouts for fr in caps.encoding_frequencies]
        layouts = caps.rope_layouts
    return [f"profile/encoding_variants/{lay}/{fr}" for lay, fr in variants if "encoding_variants" in aspects] + [
        f"profile/rope_layouts/{lay}" for lay in layouts if "rope_layouts" in aspects] + [
        f"profile/{a}" for a in aspects if a not in ("encoding_variants", "rope_layouts")]


def profile_records(adapter, profile: dict, *, repro_args: str | None = None) -> list[dict]:
    """One record per profiled aspect that has a canonical choice (check="profile").

    repro_args: the run's conformance/repro.run_args for this adapter (default: its name or spec).
    """
    records = []
    for aspect, found in profile.items():
        value, evidence = found["value"], found["evidence"]
        if aspect in CANONICAL:
            clause, canonical, declared = CANONICAL[aspect]
            if value == canonical:
                status, msg = "pass", ""
            elif value == "declined":       # the probe raised NotImplementedError
                status, msg = "skip", declined_message(evidence)
            elif value in declared or (aspect == "determinism" and value == "unknown"):
                status, msg = "skip", f"unsupported: {evidence}"
            elif aspect == "determinism" and not adapter.capabilities.deterministic:
                status, msg = "pass", f"nondeterministic, as declared: {evidence}"
            else:
                status = "fail"
                msg = f"{clause}: the spec says {canonical!r}, the implementation does {value!r} ({evidence})"
            records.append(_record(adapter, aspect, clause, status, msg, value))
        elif aspect == "output_dtype":
            bad = {d: o for d, o in value.items() if o != d and not o.startswith(("unsupported", "declined"))}
            records.append(_record(adapter, aspect, "sdpa.dtype", "fail" if bad else "pass",
                                   evidence if bad else "", value))
        elif aspect == "encoding_variants":
            for key, got in value.items():
                lay, fr = key.split("/")
                declined = got.startswith(declined_message(""))
                status = "pass" if got == key else "skip" if got == "rejects" or declined else "fail"
                msg = "" if status == "pass" else got if declined else (
                    f"unsupported: {key}" if status == "skip" else
                    f"asked for layout {lay!r} with {fr!r} frequencies, the table matches {got!r}")
                records.append(_record(adapter, f"encoding_variants/{key}", f"enc.layout.{lay}", status, msg, got,
                                       also=(f"enc.frequencies.{fr}",)))
        elif aspect == "rope_layouts":
            for lay, got in value.items():
                declined = got.startswith(declined_message(""))
                status = "pass" if got == lay else "skip" if got == "rejects" or declined else "fail"
                msg = "" if status == "pass" else got if declined else (
                    f"unsupported: layout {lay}" if status == "skip" else
                    f"rope.layout.{lay}: asked for layout {lay!r}, the rotation matches {got!r} ({evidence})")
                records.append(_record(adapter, f"rope_layouts/{lay}", f"rope.layout.{lay}", status, msg, got))
        elif aspect == "rope_angle_precision":
            bad = {d: v for d, v in value.items() if not v.startswith(("unsupported", "declined", "raised"))
                   and not _rope_angles_conform(d, v)}
            msg = (f"rope.dtype: " + ", ".join(f"{d} x gets {v}" for d, v in bad.items()) + f" ({evidence})") if bad else ""
            records.append(_record(adapter, aspect, "rope.dtype", "fail" if bad else "pass", msg, value))
    if repro_args is not None:
        from attnconf.conformance import repro

        records = [dict(r, repro=repro.command(repro_args, r["case"], r["dtype"])) for r in records]
    return records
