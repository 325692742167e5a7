"""Bundled RoPE adapters (hf-rope, keras-hub-rope, keras-hub-rope-jax) against a straightforward
float64 NumPy rotation written here from the spec's formulas (issue 12), independent of
attnconf.reference: layouts, partial rotary, offsets, (B, T) positions, scaling rules, dtypes.

Tolerances are what each dtype's same-precision computation allows at these positions (< 2100):
the wrapped implementations form angles in float32 whatever the input dtype (pinned with numbers in
test_adapters_rope_findings.py), so float64 inputs are held to 2e-5 like float32 ones.
keras-hub-rope-jax needs keras on the JAX backend, so it runs in a subprocess of its own.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from attnconf.dtypes import numpy_dtype
from tests.bundled_adapters import bundled_or_skip

ATOL = {"float64": 2e-5, "float32": 2e-5, "float16": 2e-2, "bfloat16": 6e-2}


def inv_freq(r, base, scaling, L):
    i = np.arange(0, r, 2, dtype=np.float64)
    inv = base ** (-i / r)
    if not scaling:
        return inv, 1.0
    s = scaling; f = float(s["factor"]); rule = s["rope_type"]
    L0 = s.get("original_max_position_embeddings", 4096)
    if rule == "linear":
        return inv / f, 1.0
    if rule == "dynamic":
        if L > L0:
            b = base * ((f * L / L0) - (f - 1)) ** (r / (r - 2))
            return b ** (-i / r), 1.0
        return inv, 1.0
    if rule == "yarn":
        bf, bs = s.get("beta_fast", 32), s.get("beta_slow", 1)
        dim = lambda n: r * math.log(L0 / (n * 2 * math.pi)) / (2 * math.log(base))
        lo, hi = dim(bf), dim(bs)
        if s.get("truncate", True):
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = max(lo, 0), min(hi, r - 1)
        if lo == hi:
            hi += 0.001
        ramp = np.clip((np.arange(r // 2) - lo) / (hi - lo), 0, 1)
        extra = 1 - ramp
        out = inv / f * (1 - extra) + inv * extra
        af = s.get("attention_factor")
        if af is None:
            af = 0.1 * math.log(f) + 1 if f > 1 else 1.0
        return out, af
    if rule == "llama3":
        lf, hf = s.get("low_freq_factor", 1), s.get("high_freq_factor", 4)
        wl = 2 * math.pi / inv
        smooth = (L0 / wl - lf) / (hf - lf)
        out = np.where(wl > L0 / lf, inv / f, np.where(wl < L0 / hf, inv, (1 - smooth) * inv / f + smooth * inv))
        return out, 1.0
    raise ValueError(rule)

def rope(x, positions, *, base=10000.0, rotary_dim=None, scaling=None, layout="interleaved"):
    """float64 rotation of (B, H, T, E) x by positions (T,) or (B, T)."""
    x = np.asarray(x, dtype=np.float64)
    E = x.shape[-1]; r = E if rotary_dim is None else rotary_dim
    p = np.asarray(positions, dtype=np.float64)
    p = p[None] if p.ndim == 1 else p                              # (B|1, T)
    inv, af = inv_freq(r, base, scaling, int(p.max()) + 1)
    th = p[:, None, :, None] * inv                                  # (B|1, 1, T, r/2)
    c, s = np.cos(th) * af, np.sin(th) * af
    out = x.copy()
    if layout == "interleaved":
        a, b = x[..., 0:r:2], x[..., 1:r:2]
        out[..., 0:r:2], out[..., 1:r:2] = a * c - b * s, b * c + a * s
    else:
        a, b = x[..., : r // 2], x[..., r // 2 : r]
        out[..., : r // 2], out[..., r // 2 : r] = a * c - b * s, b * c + a * s
    return out


def run(adapter, x, positions, dtype, **kw):
    """(adapter output as float64, float64 rotation of x rounded to dtype)."""
    xd = np.asarray(x).astype(numpy_dtype(dtype))
    out = adapter.rotary_embedding(adapter.from_numpy(x, dtype), adapter.index_from_numpy(positions),
                                   layout="half", **kw)
    y = adapter.to_numpy(out)
    assert y.shape == xd.shape and y.dtype == xd.dtype
    return y.astype(np.float64), rope(xd, positions, layout="half", **kw)


X = np.random.default_rng(12).standard_normal((2, 3, 5, 8))
P = np.arange(5)
COMMON = {  # options both wrapped layers implement as the spec states them
    "plain": {},
    "partial": {"rotary_dim": 4},
    "base_500": {"base": 500.0},
    "linear": {"scaling": {"rope_type": "linear", "factor": 4.0}},
    "yarn": {"scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}},
    "yarn_no_truncate": {"scaling": {"rope_type": "yarn", "factor": 4.0,
                                     "original_max_position_embeddings": 64, "truncate": False}},
}
HF_ONLY = {
    "dynamic_below": {"scaling": {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 4096}},
    "dynamic_above": {"scaling": {"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 3}},
    "llama3": {"scaling": {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 64}},
    "yarn_attention_factor": {"scaling": {"rope_type": "yarn", "factor": 4.0, "attention_factor": 1.5,
                                          "original_max_position_embeddings": 64}},
}
POSITIONS = {"from_0": P, "offset_2000": P + 2000, "per_batch": np.stack([P, P + 37])}


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
@pytest.mark.parametrize("option", list(COMMON) + list(HF_ONLY))
@pytest.mark.parametrize("name", ["hf-rope", "keras-hub-rope"])
def test_rope_adapter_matches_float64_rotation(name, option, dtype, positions):
    if name != "hf-rope" and option in HF_ONLY:
        pytest.skip("keras-hub has no such rule, or another one (test_adapters_rope_findings.py)")
    adapter = bundled_or_skip(name)
    got, want = run(adapter, X, POSITIONS[positions], dtype, **{**COMMON, **HF_ONLY}[option])
    assert np.max(np.abs(got - want)) <= tolerance(dtype, POSITIONS[positions]) * np.max(np.abs(want))


def tolerance(dtype, positions):
    # a float32 angle p·ω is off by a few float32 ulp of itself (ω rounded, the product rounded):
    # 4·2⁻²³·p radians, e.g. 8e-5 measured at p = 2004 with base 500 for float64 and float32 inputs
    return ATOL[dtype] + 4 * 2.0 ** -23 * float(np.max(positions))


@pytest.mark.parametrize("name", ["hf-rope", "keras-hub-rope"])
def test_rope_adapter_declines_interleaved_and_odd_rules(name):
    from attnconf.errors import Unsupported

    adapter = bundled_or_skip(name)
    x, p = adapter.from_numpy(X, "float32"), adapter.index_from_numpy(P)
    assert adapter.capabilities.rope_layouts == ("half",)
    with pytest.raises(Unsupported):
        adapter.rotary_embedding(x, p, layout="interleaved")
    with pytest.raises(Unsupported):
        adapter.rotary_embedding(x, p, layout="half", scaling={"rope_type": "longrope", "factor": 2.0})
    if name == "keras-hub-rope":
        for scaling in ({"rope_type": "llama3", "factor": 8.0},
                        {"rope_type": "yarn", "factor": 4.0, "attention_factor": 1.5}):
            with pytest.raises(Unsupported):
                adapter.rotary_embedding(x, p, layout="half", scaling=scaling)


def test_keras_hub_rope_on_jax_backend_in_its_own_process():
    pytest.importorskip("keras_hub")
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parents[1])!r})
        from tests.test_adapters_rope import run, X, POSITIONS, COMMON
        from attnconf.adapters.keras_hub_rope import KerasHubRopeJaxAdapter
        a = KerasHubRopeJaxAdapter()
        ok, why = a.is_available()
        out = {{"available": ok, "reason": why, "errors": {{}}}}
        if ok:
            import keras
            out["backend"] = keras.backend.backend()
            for option, kw in COMMON.items():
                for pos in POSITIONS:
                    for dtype in ("float64", "float32", "bfloat16"):
                        got, want = run(a, X, POSITIONS[pos], dtype, **kw)
                        out["errors"][f"{{option}}/{{pos}}/{{dtype}}"] = float(np.max(np.abs(got - want)))
        print("RESULT" + json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stderr[-2000:]
    result = json.loads(line[0][len("RESULT"):])
    if not result["available"]:
        pytest.skip(result["reason"])
    assert result["backend"] == "jax"
    bad = {k: v for k, v in result["errors"].items()
           if v > tolerance(k.rsplit("/", 1)[1], POSITIONS[k.split("/")[1]]) * np.max(np.abs(X)) * 2}
    assert not bad and len(result["errors"]) == len(COMMON) * len(POSITIONS) * 3
