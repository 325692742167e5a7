"""The reference's accuracy self-check: measured errors vs the mpmath oracle, against its bounds.

For what: `attnconf accuracy` (attnconf/commands/accuracy.py) prints the table this module
measures — the max error, in ulps of natural scale (spec/accuracy.md), of each reference path
over several random seeds and small shapes, plus the naive float64 formulas for contrast — and
whether each bound of the accuracy contract holds. Sizes are modest so that the whole check
runs in well under a minute on two cores (the oracle evaluates every product in mpmath).
Must not: import any framework; loosen a bound to make a row pass (the bounds are the contract).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

import attnconf.reference as R
from attnconf.reference import oracle

# The contract (spec/accuracy.md). None = shown for contrast, no bound.
BOUND_DEFAULT_ATTENTION = 8.0
BOUND_DEFAULT_ENCODING = 4.0
BOUND_EXACT = 1.0

ENCODING_POSITIONS = (0, 1, 100, 1000, 2047, 10 ** 4, 65_536, 10 ** 5, 999_000, 999_999,
                      10 ** 6, 10 ** 6 + 1, 10 ** 6 + 777)


@dataclasses.dataclass
class Row:
    what: str
    path: str
    bound: float | None
    worst: float = 0.0
    samples: int = 0
    where: str = ""

    @property
    def ok(self) -> bool:
        return self.bound is None or self.worst <= self.bound

    def add(self, err: float, where: str) -> None:
        self.samples += 1
        if err > self.worst or self.samples == 1:
            self.worst, self.where = max(err, self.worst), where


def _sdpa_problem(seed: int):
    """Small random problems: GQA, both causal alignments, masks, Ev != E, scale, S = 700."""
    rng = np.random.default_rng(seed)
    kind = seed % 6
    b, h, hkv, l, s, e, ev = [(1, 2, 2, 5, 7, 8, 8), (1, 4, 2, 6, 9, 16, 5),
                              (2, 2, 1, 7, 4, 4, 6), (1, 2, 2, 4, 8, 8, 3),
                              (1, 2, 1, 6, 48, 64, 16), (1, 1, 1, 2, 700, 8, 4)][kind]
    inputs = dict(query=rng.standard_normal((b, h, l, e)) * 1.5,
                  key=rng.standard_normal((b, hkv, s, e)),
                  value=rng.standard_normal((b, hkv, s, ev)))
    opts = {"enable_gqa": h != hkv}
    if kind == 1:
        opts.update(is_causal=True, causal_alignment="bottom_right")
    if kind == 2:
        opts.update(is_causal=True)
    if kind == 3:
        inputs["attn_mask"] = rng.random((l, s)) > 0.3
        opts["scale"] = 0.29
    if kind == 4:
        inputs["attn_mask"] = rng.standard_normal((1, h, l, s))
    if kind == 5:  # long rows: S > 512, where blocked sums and softmax bugs show
        opts.update(is_causal=True, causal_alignment="bottom_right")
    grad = rng.standard_normal((b, h, l, ev))
    return inputs, opts, grad


def _oracle_kw(inputs, opts):
    kw = dict(opts)
    if "attn_mask" in inputs:
        kw["attn_mask"] = inputs["attn_mask"]
    return kw


def _naive_sdpa(inputs, opts):
    """The textbook float64 formula without max subtraction, for contrast."""
    q, k, v = inputs["query"], inputs["key"], inputs["value"]
    g = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    sc = opts.get("scale", 1 / np.sqrt(q.shape[-1]))
    s = q @ np.swapaxes(k, -1, -2) * sc
    l, n = s.shape[-2:]
    ok = np.ones(s.shape, bool)
    m = inputs.get("attn_mask")
    if m is not None and m.dtype == np.bool_:
        ok &= np.broadcast_to(m, s.shape)
    elif m is not None:
        s = s + m
    if opts.get("is_causal"):
        shift = 0 if opts.get("causal_alignment", "top_left") == "top_left" else n - l
        ok &= np.arange(n)[None, :] <= np.arange(l)[:, None] + shift
    e = np.where(ok, np.exp(s), 0.0)
    z = e.sum(-1, keepdims=True)
    return np.where(z > 0, e / np.where(z > 0, z, 1), 0.0) @ v


def _naive_encoding(p: int, d: int) -> np.ndarray:
    ang = p * 10000.0 ** (-np.arange(0, d, 2) / d)
    out = np.empty((1, d))
    out[0, 0::2], out[0, 1::2] = np.sin(ang), np.cos(ang)
    return out


ROPE_POSITIONS = (0, 1, 2047, 65_536, 999_983, 999_999, 10 ** 6, 0)   # the last is drawn per seed
ROPE_SCALINGS = (None, {"rope_type": "linear", "factor": 4.0},
                 {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 4096},
                 {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 4096},
                 {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048,
                  "truncate": False, "attention_factor": 1.2},
                 {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192})


def _naive_rope(x, pos, *, rotary_dim, scaling, layout):
    """float64 p·ω with ω = the reference's frequencies rounded to float64 (contrast only)."""
    from attnconf.reference import rope

    rule = rope.check_scaling(scaling, rotary_dim)
    w, _, m, _ = rope.frequencies_dd(rotary_dim, 10000.0, rule, rope._rule_length(rule, pos[None]))
    theta = pos[:, None] * w
    ia, ib = rope.pairs(rotary_dim, layout)
    out = x.copy()
    a, b = x[..., ia], x[..., ib]
    out[..., ia] = m * (a * np.cos(theta) - b * np.sin(theta))
    out[..., ib] = m * (b * np.cos(theta) + a * np.sin(theta))
    return out


def measure(seeds: int = 10, progress=None) -> list[Row]:
    """Run every comparison; `progress(str)` is called between groups when given."""
    say = progress or (lambda _m: None)
    rows = {key: Row(*key) for key in [
        ("sdpa output", "default float64", BOUND_DEFAULT_ATTENTION),
        ("sdpa output", "exact", BOUND_EXACT),
        ("sdpa output", "naive float64 (contrast)", None),
        ("sdpa_vjp dq/dk/dv", "default float64", BOUND_DEFAULT_ATTENTION),
        ("sdpa_vjp dq/dk/dv", "exact", BOUND_EXACT),
        ("sdpa output, logits ~1e4", "exact", BOUND_EXACT),
        ("sdpa output, logits ~1e4", "default float64 (no bound)", None),
        ("mha output", "default float64", BOUND_DEFAULT_ATTENTION),
        ("mha output", "exact", BOUND_EXACT),
        ("encoding, p <= 1e6+777", "default float64", BOUND_DEFAULT_ENCODING),
        ("encoding, p <= 1e6+777", "exact", BOUND_EXACT),
        ("encoding, p <= 1e6+777", "naive float64 (contrast)", None),
        ("rope, p <= 1e6, all scalings", "default float64", BOUND_DEFAULT_ENCODING),
        ("rope, p <= 1e6, all scalings", "exact", BOUND_EXACT),
        ("rope, p <= 1e6, all scalings", "naive float64 (contrast)", None),
    ]}

    def rec(what, path, actual, expected, scale, where):
        row = next(r for k, r in rows.items() if k[0] == what and k[1] == path)
        row.add(oracle.ulp_error(actual, expected, scale), where)

    say("sdpa and sdpa_vjp")
    for seed in range(seeds):
        inputs, opts, grad = _sdpa_problem(seed)
        where = f"seed {seed}"
        kw = _oracle_kw(inputs, opts)
        expected = oracle.sdpa(inputs["query"], inputs["key"], inputs["value"], as_dd=True, **kw)
        ns = R.natural_scales("sdpa", inputs, opts)["output"]
        rec("sdpa output", "default float64", R.compute("sdpa", inputs, opts)["output"], expected, ns, where)
        rec("sdpa output", "exact", R.compute("sdpa", inputs, opts, exact=True)["output"], expected, ns, where)
        rec("sdpa output", "naive float64 (contrast)", _naive_sdpa(inputs, opts), expected, ns, where)
        vin = dict(inputs, grad_output=grad)
        eg = oracle.sdpa_vjp(inputs["query"], inputs["key"], inputs["value"], grad, as_dd=True, **kw)
        scales = R.natural_scales("sdpa_vjp", vin, opts)
        d = R.compute("sdpa_vjp", vin, opts)
        x = R.compute("sdpa_vjp", vin, opts, exact=True)
        for i, n in enumerate(("dq", "dk", "dv")):
            rec("sdpa_vjp dq/dk/dv", "default float64", d[n], eg[i], scales[n], f"{where} {n}")
            rec("sdpa_vjp dq/dk/dv", "exact", x[n], eg[i], scales[n], f"{where} {n}")

    say("large logits")
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        q = rng.standard_normal((1, 2, 4, 8))
        k = rng.standard_normal((1, 2, 6, 8))
        v = rng.standard_normal((1, 2, 6, 3))
        q[..., 0] = (1e3 if seed % 2 else 1e4) * np.sqrt(8) / 16  # logits ~1e3/1e4, O(1) spread
        k[..., 0] = 16 + 0.01 * rng.standard_normal(6)
        expected = oracle.sdpa(q, k, v, as_dd=True)
        ns = R.natural_scales("sdpa", dict(query=q, key=k, value=v), {})["output"]
        what = "sdpa output, logits ~1e4"
        rec(what, "exact", R.sdpa(q, k, v, exact=True), expected, ns, f"seed {seed}")
        rec(what, "default float64 (no bound)", R.sdpa(q, k, v), expected, ns, f"seed {seed}")

    say("multi-head attention")
    for seed in range(seeds):
        rng = np.random.default_rng(200 + seed)
        hkv = (1, 2, 4)[seed % 3]
        cross = bool(seed % 2)
        d, dkv = 6, (5 if cross else 6)
        w = dict(wq=rng.standard_normal((d, 12)), wk=rng.standard_normal((dkv, 3 * hkv)),
                 wv=rng.standard_normal((dkv, 2 * hkv)), wo=rng.standard_normal((8, d)),
                 bq=rng.standard_normal(12), bo=rng.standard_normal(d))
        x = rng.standard_normal((1, 4, d))
        xkv = rng.standard_normal((1, 5, dkv)) if cross else None
        opts = dict(num_heads=4, num_kv_heads=hkv, is_causal=not cross)
        inputs = dict(query_input=x, **w)
        if cross:
            inputs["key_value_input"] = xkv
        expected = oracle.multi_head_attention(x, xkv, w, as_dd=True, **opts)
        ns = R.natural_scales("multi_head_attention", inputs, opts)["output"]
        for path, exact in (("default float64", False), ("exact", True)):
            got = R.compute("multi_head_attention", inputs, opts, exact=exact)["output"]
            rec("mha output", path, got, expected, ns, f"seed {seed}")

    say("encodings")
    variants = [("vaswani", "interleaved", 64), ("t2t", "concat", 33), ("vaswani", "cos_first", 7),
                ("vaswani", "interleaved", 512)]
    rng = np.random.default_rng(300)
    sampled = tuple(int(x) for x in rng.integers(0, 10 ** 6 + 1, size=4 * seeds))
    what = "encoding, p <= 1e6+777"
    for frequencies, layout, dim in variants:
        for p in ENCODING_POSITIONS + (sampled if dim == 64 else ()):
            opts = dict(dim=dim, layout=layout, frequencies=frequencies)
            expected = oracle.sinusoidal_encoding(1, positions=[p], as_dd=True, **opts)
            where = f"p={p} {frequencies}/{layout}/d={dim}"
            rec(what, "default float64", R.sinusoidal_encoding(1, offset=p, **opts), expected, 1.0, where)
            rec(what, "exact", R.sinusoidal_encoding(1, offset=p, exact=True, **opts), expected, 1.0, where)
            if frequencies == "vaswani" and layout == "interleaved":
                rec(what, "naive float64 (contrast)", _naive_encoding(p, dim), expected, 1.0, where)

    say("rotary embeddings")
    what = "rope, p <= 1e6, all scalings"
    for seed in range(seeds):
        for n, scaling in enumerate(ROPE_SCALINGS):
            rng = np.random.default_rng(400 + seed * len(ROPE_SCALINGS) + n)
            layout = ("interleaved", "half")[(seed + n) % 2]
            x = rng.standard_normal((2, 1, len(ROPE_POSITIONS), 16))
            pos = np.array(ROPE_POSITIONS[:-1] + (int(rng.integers(0, 10 ** 6 + 1)),))
            kw = dict(rotary_dim=(16, 12)[seed % 2], scaling=scaling, layout=layout)
            inputs, expected = dict(x=x, positions=pos), oracle.rotary_embedding(x, pos, as_dd=True, **kw)
            ns = R.natural_scales("rotary_embedding", inputs, kw)["output"]
            where = f"seed {seed} {(scaling or {}).get('rope_type', 'none')}/{layout}"
            rec(what, "default float64", R.compute("rotary_embedding", inputs, kw)["output"], expected, ns, where)
            rec(what, "exact", R.compute("rotary_embedding", inputs, kw, exact=True)["output"], expected, ns, where)
            rec(what, "naive float64 (contrast)", _naive_rope(x, pos, **kw), expected, ns, where)
    return list(rows.values())


def format_table(rows: list[Row]) -> str:
    lines = [f"{'quantity':<28} {'path':<28} {'max ulp':>11} {'bound':>6}  {'verdict':<7} worst at",
             "-" * 104]
    for r in rows:
        bound = "-" if r.bound is None else f"{r.bound:g}"
        verdict = "-" if r.bound is None else ("PASS" if r.ok else "FAIL")
        lines.append(f"{r.what:<28} {r.path:<28} {r.worst:>11.3g} {bound:>6}  {verdict:<7} {r.where}")
    return "\n".join(lines)


def measure_baselines(seeds: int = 10) -> list[tuple[str, str, float]]:
    """(quantity, dtype, max error in ulps of natural scale of that dtype) for the
    same-precision paths, against exact=True for the inputs as the dtype holds them.

    No bound: these are the baselines the tolerance rule scales (tol.baseline); shown so that a
    reader sees what a straightforward evaluation in each dtype achieves.
    """
    from attnconf.dtypes import EPS
    from attnconf.reference.rounding import to_dtype

    out = []
    for dtype in ("float32", "float16", "bfloat16"):
        worst = {"sdpa output": 0.0, "sdpa_vjp dq/dk/dv": 0.0, "encoding, p <= 1e5": 0.0}
        for seed in range(seeds):
            inputs, opts, grad = _sdpa_problem(seed)
            held = {k: to_dtype(v, dtype).astype(np.float64) if v.dtype != np.bool_ else v
                    for k, v in dict(inputs, grad_output=grad).items()}
            fwd = {k: v for k, v in held.items() if k != "grad_output"}
            exact = R.compute("sdpa", fwd, opts, exact=True)["output"]
            got = R.compute("sdpa", fwd, opts, precision=dtype)["output"].astype(np.float64)
            ns = R.natural_scales("sdpa", fwd, opts)["output"]
            worst["sdpa output"] = max(worst["sdpa output"], _eps_err(got, exact, ns, EPS[dtype]))
            ex = R.compute("sdpa_vjp", held, opts, exact=True)
            gv = R.compute("sdpa_vjp", held, opts, precision=dtype)
            sc = R.natural_scales("sdpa_vjp", held, opts)
            for n in ("dq", "dk", "dv"):
                err = _eps_err(gv[n].astype(np.float64), ex[n], sc[n], EPS[dtype])
                worst["sdpa_vjp dq/dk/dv"] = max(worst["sdpa_vjp dq/dk/dv"], err)
        table = R.sinusoidal_encoding(64, 64, offset=10 ** 5 - 64, exact=True)
        low = R.sinusoidal_encoding(64, 64, offset=10 ** 5 - 64, precision=dtype).astype(np.float64)
        worst["encoding, p <= 1e5"] = float(np.max(np.abs(low - table))) / EPS[dtype]
        rng = np.random.default_rng(500)
        held = to_dtype(rng.standard_normal((1, 2, 64, 32)), dtype).astype(np.float64)
        rin = dict(x=held, positions=np.arange(10 ** 5 - 64, 10 ** 5))
        exact = R.compute("rotary_embedding", rin, {}, exact=True)["output"]
        got = R.compute("rotary_embedding", rin, {}, precision=dtype)["output"].astype(np.float64)
        worst["rope, p <= 1e5"] = _eps_err(got, exact, R.natural_scales("rotary_embedding", rin, {})["output"], EPS[dtype])
        out += [(what, dtype, err) for what, err in worst.items()]
    return out


def _eps_err(actual, exact, scale, eps) -> float:
    diff = np.abs(actual - exact)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(diff == 0, 0.0, diff / (scale * eps))
    return float(np.nanmax(r)) if r.size else 0.0


def format_baselines(rows) -> str:
    lines = ["same-precision baselines (tol.baseline), max error vs exact in ulps of natural scale "
             "of their own dtype (no bound):",
             f"{'quantity':<28} {'dtype':<10} {'max ulp':>9}", "-" * 49]
    lines += [f"{what:<28} {dtype:<10} {err:>9.3g}" for what, dtype, err in rows]
    return "\n".join(lines)


def run(seeds: int = 10, progress=None, baselines: bool = True) -> tuple[str, bool, float]:
    """(table text, all bounds hold, seconds)."""
    t0 = time.perf_counter()
    rows = measure(seeds, progress)
    text = format_table(rows)
    if baselines:
        if progress:
            progress("same-precision baselines")
        text += "\n\n" + format_baselines(measure_baselines(seeds))
    return text, all(r.ok for r in rows), time.perf_counter() - t0
