"""Invariants of the gradients of the sdpa kernel options (spec/invariants.md inv.opt.grad_hidden):
keys hidden from every row by a window or a key length get dk = dv = 0, and the gradients of the
visible keys do not change when the hidden keys' keys and values do. Named by the sdpa_vjp
registry entry (`invariants=`); run by the core, attnconf.conformance.checks.invariants.

Results of the implementation are compared with each other (never with the reference), each
allowed inv_ulps(sdpa_vjp, dtype) of a natural-scale bound. Runs only for an adapter with
gradients whose Capabilities.sdpa_options lists window.
"""
from __future__ import annotations

import numpy as np

from attnconf.conformance.checks import strategies as gen
from attnconf.conformance.checks.invariants import Context, Invariant, Violation, assert_close, inv_ulps


def vjp(ctx: Context, q, k, v, g, **options):
    """adapter.sdpa_vjp with the options in native form; (dq, dk, dv) as float64."""
    ad = ctx.adapter
    native = {n: (ad.index_from_numpy(np.asarray(x, np.int64)) if n == "key_lengths" else x)
              for n, x in options.items()}
    if q.shape[1] != k.shape[1]:
        native["enable_gqa"] = True
    res = ad.sdpa_vjp(*(ad.from_numpy(a, ctx.dtype) for a in (q, k, v, g)), **native)
    return tuple(np.asarray(ad.to_numpy(r)).astype(np.float64) for r in res[:3])


def _requires(caps, dtype):
    if not caps.gradients:
        return "declares no gradients"
    return "" if "window" in caps.sdpa_options else "needs the sdpa option window (Capabilities.sdpa_options)"


def _examples(caps, dtype):
    from hypothesis import strategies as st

    return st.fixed_dictionaries({
        "B": st.integers(1, 2), "Hkv": st.integers(1, 2), "G": st.just(1), "L": st.integers(1, 4),
        "S": st.integers(3, 9), "E": st.integers(2, 4), "Ev": st.just(0), "seed": gen.SEEDS,
        "left": st.sampled_from((0, 1, 2)), "right": st.sampled_from((0, 1)),
        "key_lengths": st.booleans()})


def _visible(ex, l, s, b, lengths):
    """(B, L, S) bool: key j visible to row i (top-left positions p_i = i, sdpa.opt.window,
    sdpa.opt.key_lengths)."""
    rel = np.arange(s)[None, :] - np.arange(l)[:, None]
    vis = np.broadcast_to((rel >= -ex["left"]) & (rel <= ex["right"]), (b, l, s))
    if lengths is not None:
        vis = vis & (np.arange(s)[None, None, :] < lengths[:, None, None])
    return vis


def prop_grad_hidden(ctx, ex):
    q, k, v = gen.sdpa_arrays(ex, ctx.dtype)
    b, s, l = q.shape[0], k.shape[2], q.shape[2]
    rng = np.random.default_rng(ex["seed"] + 1)
    g = gen.round_to(rng.uniform(-1, 1, q.shape[:3] + (v.shape[-1],)), ctx.dtype)
    options = {"window": (ex["left"], ex["right"])}
    lengths = None
    if ex["key_lengths"] and "key_lengths" in ctx.caps.sdpa_options:
        lengths = rng.integers(1, s + 1, b)
        options["key_lengths"] = lengths
    vis = _visible(ex, l, s, b, lengths)
    hidden = ~vis.any(axis=1)                       # (B, S): keys no row sees
    # a row with no visible key follows the fully-masked policy (sdpa.fully_masked: 0, or the
    # mean of V, whose gradient reaches every key): such draws say nothing here
    if not hidden.any() or not vis.any(axis=2).all():
        return
    ulps = inv_ulps("sdpa_vjp", ctx.dtype)
    # a bound of every gradient entry: L·S·max|g|·max|v|·max(|q|, |k|)·(1 + max|v|·max|g|)
    bound = float(l * s * np.abs(g).max() * np.abs(v).max() * max(np.abs(q).max(), np.abs(k).max(), 1.0) + 1.0)
    dq, dk, dv = vjp(ctx, q, k, v, g, **options)
    mask = hidden[:, None, :, None]
    for name, d in (("dk", dk), ("dv", dv)):
        leak = np.where(mask, d, 0.0)
        assert_close(leak, np.zeros_like(leak), bound, ulps, ctx.dtype,
                     f"{name} of keys hidden from every row (window {options['window']}"
                     f"{', key_lengths ' + str(lengths.tolist()) if lengths is not None else ''}) is not 0")
    k2 = np.where(mask, gen.round_to(rng.uniform(-1, 1, k.shape), ctx.dtype), k)
    v2 = np.where(mask, gen.round_to(rng.uniform(-1, 1, v.shape), ctx.dtype), v)
    dq2, dk2, dv2 = vjp(ctx, q, k2, v2, g, **options)
    for name, a, x in (("dq", dq2, dq), ("dk", np.where(mask, 0, dk2), np.where(mask, 0, dk)),
                       ("dv", np.where(mask, 0, dv2), np.where(mask, 0, dv))):
        assert_close(a, x, bound, ulps, ctx.dtype,
                     f"{name} changed when only the hidden keys' keys and values changed (window {options['window']})")


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("inv.opt.grad_hidden", "sdpa_vjp", _examples, prop_grad_hidden, requires=_requires),
)
