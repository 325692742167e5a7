"""Profile aspects of `sdpa_lse` (spec sdpa.lse.*): the LSE's base (e, or base 2, or the LSE of
the unscaled logits), the value of a row with no key (−∞, finite, NaN) and how sinks enter it.
Named by the sdpa_lse registry entry (`profile=`); run by the core,
attnconf.conformance.checks.profile.

Candidates are the reference's LSE (attnconf.reference.compute("sdpa_lse", …)) and NumPy float64
evaluations of each alternative on the probe's inputs. LSEs differ between the alternatives by
≥ 0.3 (|lse|·(1/ln 2 − 1) with |lse| ≥ 1 on these probes), far above MATCH_RTOL of 1 + |lse|.
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks.profile import Aspect, _declinable, _fmt, _named, _probe, match


def _arrays(seed, b=1, h=2, l=3, s=5, e=4):
    rng = np.random.default_rng(seed)
    q = np.round(rng.uniform(-2, 2, (b, h, l, e)), 2)
    k = np.round(rng.uniform(-2, 2, (b, h, s, e)), 2)
    v = np.round(rng.uniform(-1, 1, (b, h, s, e)), 2)
    return q, k, v


def _run(adapter, dtype, q, k, v, mask=None, **opts):
    """(lse float64 | None, outcome) of adapter.sdpa_lse on the probe's inputs."""
    def call():
        native = {n: adapter.from_numpy(np.asarray(x, np.float64), dtype) for n, x in opts.items()}
        m = None if mask is None else adapter.mask_from_numpy(mask, dtype)
        out = adapter.sdpa_lse(*(adapter.from_numpy(a, dtype) for a in (q, k, v)), attn_mask=m, **native)
        return out[1]
    return _probe(adapter, call)


def _ref_lse(q, k, v, mask=None, **opts):
    from attnconf import reference

    inputs = {"query": q, "key": k, "value": v, **{n: np.asarray(x) for n, x in opts.items()}}
    if mask is not None:
        inputs["attn_mask"] = mask
    return reference.compute("sdpa_lse", inputs, {})["lse"]


def _result(out, how, cands, scale, what):
    if out is None:
        return {"value": "unsupported" if how.startswith("unsupported") else "error", "evidence": f"{what}: {how}"}
    value, dist = match(out, cands, scale)
    return {"value": value, "evidence": f"{what}: distance to {_fmt(dist)}"}


@_declinable
def _base(adapter, dtype):
    q, k, v = _arrays(31)
    out, how = _run(adapter, dtype, q, k, v)
    lse = _ref_lse(q, k, v)
    s = q @ np.swapaxes(k, -1, -2)
    unscaled = np.log(np.exp(s).sum(axis=-1))
    cands = {"e": lse, _named("lse_base", "base2"): lse / np.log(2.0), _named("lse_base", "unscaled"): unscaled}
    return _result(out, how, cands, 1.0 + float(np.abs(lse).max()), "lse of a 3 × 5 problem, E = 4")


@_declinable
def _empty(adapter, dtype):
    q, k, v = _arrays(32)
    kinds = adapter.capabilities.mask_kinds
    if "bool" in kinds:
        mask = np.ones((1, 1, 3, 5), bool)
        mask[..., 1, :] = False
    elif "float" in kinds:
        mask = np.zeros((1, 1, 3, 5))
        mask[..., 1, :] = -np.inf
    else:
        return {"value": "unsupported", "evidence": "takes no attn_mask"}
    out, how = _run(adapter, dtype, q, k, v, mask)
    if out is None:
        return _result(out, how, {}, 1.0, "row 1 fully masked")
    row = out[..., 1]
    value = ("-inf" if np.all(np.isneginf(row)) else _named("lse_empty", "nan") if np.any(np.isnan(row))
             else _named("lse_empty", "finite") if np.all(np.isfinite(row)) else "other")
    return {"value": value, "evidence": f"row 1 of a {'bool' if mask.dtype == bool else 'float'} mask hides "
            f"every key: lse {row.ravel().tolist()}"}


@_declinable
def _sinks(adapter, dtype):
    if "sinks" not in adapter.capabilities.sdpa_options:
        return {"value": "unsupported", "evidence": "Capabilities.sdpa_options lacks sinks"}
    q, k, v = _arrays(33)
    sinks = np.array([1.5, -0.5])
    out, how = _run(adapter, dtype, q, k, v, sinks=sinks)
    cands = {"spec": _ref_lse(q, k, v, sinks=sinks), _named("lse_sinks", "ignored"): _ref_lse(q, k, v)}
    return _result(out, how, cands, 1.0 + float(np.abs(cands["spec"]).max()), "sinks [1.5, −0.5]")


def _dtype_probe(adapter, dt):
    q, k, v = _arrays(34)
    return adapter.sdpa_lse(*(adapter.from_numpy(a, dt) for a in (q, k, v)))[0]


_U = ("unsupported",)
ASPECTS = (
    Aspect("lse_base", "sdpa_lse", _base, "sdpa.lse.base", "e", _U),
    Aspect("lse_empty", "sdpa_lse", _empty, "sdpa.lse.empty", "-inf", _U),
    Aspect("lse_sinks", "sdpa_lse", _sinks, "sdpa.lse.sinks", "spec", _U),
)

OUTPUT_DTYPE = _dtype_probe
