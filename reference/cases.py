"""The case catalogue: every golden case, generated from the spec index, each citing its clauses.

Contract used by the golden files, the conformance engine and the reports:

    Case.id         "sdpa/gqa_h4_hkv2_causal_br" — unique, stable, path-like
    Case.operation  "sdpa" | "sdpa_vjp" | "multi_head_attention" | "sinusoidal_encoding"
    Case.clauses    ("sdpa.gqa", "sdpa.causal.bottom_right")
    Case.inputs     dict name -> np.ndarray (float64, or bool for masks)
    Case.options    dict of keyword options passed to the operation (JSON-serialisable)
    Case.expected   dict name -> np.ndarray float64, computed with exact=True
                    ("output"; "dq","dk","dv" for sdpa_vjp)
    Case.scale      dict name -> np.ndarray float64, the natural scale of each element
                    (Σⱼ pᵢⱼ·|vⱼ| for attention outputs, 1 for encodings; see spec/tolerance.md)
    Case.seed       int
    Case.family     str, the case family used by calibration (e.g. "sdpa-causal")
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import numpy as np


@dataclasses.dataclass
class Case:
    id: str
    operation: str
    clauses: tuple[str, ...]
    inputs: dict[str, np.ndarray]
    options: dict[str, Any]
    expected: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    scale: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    seed: int = 0
    family: str = ""
    description: str = ""


# ---------------------------------------------------------------------------------------------
# The catalogue. Inputs only: expected values and natural scales are filled in by
# attnconf.reference.golden from the reference (exact=True); nothing here is a hand-made number.
# ---------------------------------------------------------------------------------------------

def __getattr__(name: str):
    # The operation names are the registry's (attnconf.operations), read when asked for.
    if name == "OPERATIONS":
        from attnconf import operations

        return operations.names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_TINY = 2.0 ** -14   # smallest normal float16: smaller magnitudes would be subnormal or lost
_HUGE = 65504.0      # largest finite float16
_HUGE_BOTH = 65280.0  # largest bfloat16 value that float16 also holds (65504 itself is not a bfloat16)


def representable(x) -> np.ndarray:
    """`x` rounded to values exactly representable in float16 AND bfloat16, as float64.

    Rounding to bfloat16 (8 significant bits) gives a value float16 (11 bits) also holds when its
    magnitude is 0 or within [2^-14, 65504]; smaller magnitudes go to 0. Infinities stay (masks).
    So casting a golden input to any tested dtype is exact and one float64 golden serves them all.
    The bfloat16 rounding is the project's own (tol.golden: nearest-even, once, straight from
    float64), never a dependency's cast, so the inputs are the same bits with every install.
    """
    from attnconf.reference.rounding import round_to_bfloat16

    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    if np.any(np.abs(x[finite]) > _HUGE):
        raise ValueError(f"golden input magnitude should be <= {_HUGE}, but got {np.abs(x[finite]).max()}")
    r = round_to_bfloat16(x)
    r[np.abs(r) < _TINY] = 0.0
    over = np.isfinite(r) & (np.abs(r) > _HUGE_BOTH)  # 65281 … 65504 round up to 65536 in bfloat16
    r[over] = np.sign(r[over]) * _HUGE_BOTH
    return r


def _seed(case_id: str) -> int:
    # crc32 of the id: stable across runs and Python versions (hash() is salted).
    return zlib.crc32(case_id.encode("utf-8"))


def _normal(rng: np.random.Generator, shape, std: float = 1.0) -> np.ndarray:
    return representable(rng.standard_normal(shape) * std)


def _make_case(case_id: str, operation: str, clauses, inputs, options, seed, family, description) -> Case:
    from attnconf import operations

    # Every case cites the clauses every case of its operation exercises (the entry's `clauses`),
    # then those of its own feature.
    cited = tuple(dict.fromkeys(tuple(operations.get(operation).clauses) + tuple(clauses)))
    return Case(id=case_id, operation=operation, clauses=cited, inputs=inputs, options=options,
                seed=seed, family=family, description=description)


# --- SDPA ------------------------------------------------------------------------------------

def _mask(rng, kind: str, shape, *, ensure_visible: bool = True, neg_inf: float = 0.0) -> np.ndarray:
    """A boolean mask (True = takes part) or an additive float mask of the given (broadcast) shape.

    ensure_visible: every row keeps at least one visible key, so that no row is fully masked by
    accident (fully-masked rows are their own cases). neg_inf: fraction of float entries at −∞.
    """
    visible = rng.random(shape) < 0.7
    if ensure_visible:
        visible[..., 0] |= ~visible.any(axis=-1)
    if kind == "bool":
        return visible
    values = _normal(rng, shape, 2.0)
    if neg_inf:
        hidden = (rng.random(shape) < neg_inf)
        if ensure_visible:
            hidden[..., 0] &= False
        values[hidden] = -np.inf
    return values


def _scale_logits(rng, q, k, scale, target: float, negative: bool = False):
    """Rescale q and k so that the largest |logit| is close to `target` (then rounded to golden
    values). negative: make every logit negative, near −target, so that a softmax which does not
    subtract the row maximum underflows to 0/0."""
    if negative:
        w = rng.standard_normal(q.shape[-1])
        k = w + 0.05 * rng.standard_normal(k.shape)
        q = -(w + 0.05 * rng.standard_normal(q.shape))
    logits = np.einsum("bhle,bhse->bhls", q, np.repeat(k, q.shape[1] // k.shape[1], axis=1)) * scale
    factor = np.sqrt(target / np.abs(logits).max())
    return representable(q * factor), representable(k * factor)


def sdpa_case(case_id: str, clauses=(), *, B=1, H=1, Hkv=None, L=4, S=4, E=8, Ev=None,
              mask=None, mask_shape=None, is_causal=False, alignment="top_left", scale=None,
              logits=None, negative_logits=False, fully_masked_rows=0, operation="sdpa",
              family="", description="", tweak=None) -> Case:
    """One SDPA (or sdpa_vjp) case: random golden-representable inputs of the given sizes.

    mask: None | "bool" | "float" | "float-inf" (float with −∞ entries) | "float-large" (a row of
    large finite negatives). fully_masked_rows: how many (b, h, i) rows to mask completely.
    tweak: optional callable(inputs, rng) for a special input pattern.
    """
    Hkv = H if Hkv is None else Hkv
    Ev = E if Ev is None else Ev
    seed = _seed(case_id)
    rng = np.random.default_rng(seed)
    eff_scale = 1.0 / np.sqrt(E) if scale is None else scale
    q, k = _normal(rng, (B, H, L, E)), _normal(rng, (B, Hkv, S, E))
    if logits is not None:
        q, k = _scale_logits(rng, q, k, eff_scale, logits, negative_logits)
    inputs = {"query": q, "key": k, "value": _normal(rng, (B, Hkv, S, Ev))}
    clauses = list(clauses)
    clauses.append("sdpa.scale.default" if scale is None else "sdpa.scale.explicit")
    if Ev != E:
        clauses.append("sdpa.value_dim")
    if Hkv != H:
        clauses.append("sdpa.gqa")
    if logits is not None:
        clauses.append("sdpa.range")
    if is_causal:
        clauses.append(f"sdpa.causal.{alignment}")
    if mask is not None:
        shape = tuple(mask_shape or (B, H, L, S))
        kind = "bool" if mask == "bool" else "float"
        m = _mask(rng, kind, shape, neg_inf=0.2 if mask == "float-inf" else 0.0)
        if mask == "float-large":
            m[..., 0, :] = representable(-60000.0)  # finite: NOT a masked row (sdpa.fully_masked)
        if fully_masked_rows:
            full = np.broadcast_to(m, (B, H, L, S)).copy()
            rows = rng.choice(B * H * L, size=fully_masked_rows, replace=False)
            full.reshape(B * H * L, S)[rows] = False if kind == "bool" else -np.inf
            m, shape = full, full.shape
        inputs["attn_mask"] = m
        clauses.append(f"sdpa.mask.{kind}")
        if shape != (B, H, L, S):
            clauses.append("sdpa.mask.broadcast")
        if is_causal:
            clauses.append("sdpa.mask_and_causal")
    if fully_masked_rows or (is_causal and alignment == "bottom_right" and L > S):
        clauses.append("sdpa.fully_masked")
    if operation == "sdpa_vjp":
        inputs["grad_output"] = _normal(rng, (B, H, L, Ev))
    if tweak is not None:
        tweak(inputs, rng)
    options = {"is_causal": is_causal, "causal_alignment": alignment, "scale": scale,
               "enable_gqa": Hkv != H}
    if not family:
        family = "sdpa-vjp" if operation == "sdpa_vjp" else "sdpa"
    return _make_case(case_id, operation, clauses, inputs, options, seed, family, description)


def _zero_queries(inputs, rng):
    inputs["query"][...] = 0.0  # every weight 1/S: the output is the mean of V


def _repeated_keys(inputs, rng):
    inputs["key"][...] = inputs["key"][:, :, :1, :]  # all keys equal: uniform weights again


def sdpa_cases() -> list[Case]:
    c = sdpa_case
    f = "sdpa-mask"
    cases = [
        # sizes: odd, degenerate, L < S, L > S, batch > 1, Ev != E
        c("sdpa/size_l1_s1_e1", L=1, S=1, E=1, description="smallest problem: one query, one key"),
        c("sdpa/size_odd_l7_s13_e5", L=7, S=13, E=5),
        c("sdpa/size_l_gt_s_l11_s3", L=11, S=3, E=6),
        c("sdpa/size_l_lt_s_l3_s29", L=3, S=29, E=7),
        c("sdpa/size_b3_h2_l9_s11_e8", B=3, H=2, L=9, S=11, E=8),
        c("sdpa/size_b2_h5_l6_s10_e3", B=2, H=5, L=6, S=10, E=3),
        c("sdpa/size_e64_l16_s16", L=16, S=16, E=64),
        c("sdpa/size_e96_h2_l9_s33", H=2, L=9, S=33, E=96),
        c("sdpa/size_l1_s64_decode", L=1, S=64, E=16, description="one decoding step"),
        c("sdpa/value_dim_e12_ev20", H=3, L=5, S=8, E=12, Ev=20),
        c("sdpa/value_dim_e16_ev3", L=6, S=9, E=16, Ev=3),
        c("sdpa/value_dim_e4_ev32", B=2, L=4, S=7, E=4, Ev=32),
        c("sdpa/value_dim_ev1", L=5, S=5, E=9, Ev=1),
        c("sdpa/uniform_zero_query", L=4, S=9, E=8, tweak=_zero_queries,
          description="q = 0: uniform weights, the output is the mean of V"),
        c("sdpa/uniform_equal_keys", L=5, S=6, E=4, tweak=_repeated_keys),
        # scale
        c("sdpa/scale_explicit_0p3", L=6, S=7, E=8, scale=0.3),
        c("sdpa/scale_explicit_1p7", L=5, S=9, E=4, scale=1.7, description="scale > 1"),
        c("sdpa/scale_explicit_ev_ne_e", L=4, S=6, E=8, Ev=5, scale=0.45),
        c("sdpa/scale_default_e3_ev7", L=5, S=5, E=3, Ev=7, description="1/sqrt(E), not 1/sqrt(Ev)"),
        c("sdpa/scale_default_e17", L=4, S=8, E=17, description="E not a power of two or square"),
        # boolean masks, every broadcast shape
        c("sdpa/mask_bool_full", B=2, H=2, L=5, S=7, mask="bool", family=f),
        c("sdpa/mask_bool_ls", B=2, H=3, L=6, S=9, mask="bool", mask_shape=(6, 9), family=f),
        c("sdpa/mask_bool_1s", B=2, H=2, L=4, S=8, mask="bool", mask_shape=(1, 8), family=f),
        c("sdpa/mask_bool_b11s_padding", B=3, H=2, L=5, S=10, mask="bool", mask_shape=(3, 1, 1, 10),
          family=f, description="key padding mask"),
        c("sdpa/mask_bool_hls", B=2, H=3, L=4, S=6, mask="bool", mask_shape=(3, 4, 6), family=f),
        c("sdpa/mask_bool_b1ls", B=2, H=4, L=3, S=5, mask="bool", mask_shape=(2, 1, 3, 5), family=f),
        # float masks
        c("sdpa/mask_float_full", B=2, H=2, L=5, S=6, mask="float", family=f),
        c("sdpa/mask_float_ls", H=3, L=7, S=5, mask="float", mask_shape=(7, 5), family=f),
        c("sdpa/mask_float_b11s", B=2, H=2, L=4, S=9, mask="float-inf", mask_shape=(2, 1, 1, 9), family=f),
        c("sdpa/mask_float_neg_inf", B=1, H=2, L=8, S=8, mask="float-inf", family=f),
        c("sdpa/mask_float_hls", B=2, H=2, L=3, S=7, mask="float", mask_shape=(2, 3, 7), family=f),
        c("sdpa/mask_float_large_finite", H=2, L=4, S=6, mask="float-large", family=f,
          description="a row of -60000 entries is an ordinary softmax, not a fully-masked row"),
        c("sdpa/mask_float_scale_explicit", L=5, S=7, E=6, mask="float", scale=0.6, family=f,
          description="the mask is added after scaling"),
        # causal, both alignments, L = S, L < S, L > S
    ]
    f = "sdpa-causal"
    for align, tag in (("top_left", "tl"), ("bottom_right", "br")):
        cases += [
            c(f"sdpa/causal_{tag}_square_l9", H=2, L=9, S=9, E=8, is_causal=True, alignment=align, family=f),
            c(f"sdpa/causal_{tag}_l5_s12", L=5, S=12, E=6, is_causal=True, alignment=align, family=f),
            c(f"sdpa/causal_{tag}_l12_s5", L=12, S=5, E=6, is_causal=True, alignment=align, family=f),
            c(f"sdpa/causal_{tag}_l1_s33", L=1, S=33, E=8, is_causal=True, alignment=align, family=f,
              description="decoding step: top_left sees key 0 only, bottom_right sees all"),
            c(f"sdpa/causal_{tag}_b2_h3_l7_s10", B=2, H=3, L=7, S=10, E=5, is_causal=True,
              alignment=align, family=f),
            c(f"sdpa/mask_bool_causal_{tag}", B=2, H=2, L=6, S=9, mask="bool", is_causal=True,
              alignment=align, family=f),
            c(f"sdpa/mask_float_causal_{tag}", H=2, L=7, S=5, mask="float", mask_shape=(7, 5),
              is_causal=True, alignment=align, family=f),
        ]
    f = "sdpa-fully-masked"
    cases += [
        c("sdpa/fully_masked_bool_rows", B=2, H=2, L=6, S=7, mask="bool", fully_masked_rows=4, family=f),
        c("sdpa/fully_masked_float_rows", H=2, L=5, S=8, mask="float", fully_masked_rows=3, family=f),
        c("sdpa/fully_masked_padding_ls", B=1, H=3, L=4, S=6, mask="bool", mask_shape=(4, 6),
          fully_masked_rows=2, family=f),
        c("sdpa/fully_masked_causal_br_l9_s4", L=9, S=4, E=5, is_causal=True, alignment="bottom_right",
          family=f, description="bottom-right with L > S: the first L - S rows see no key"),
        c("sdpa/fully_masked_mask_and_causal", B=1, H=2, L=5, S=5, mask="bool", fully_masked_rows=2,
          is_causal=True, family=f),
        c("sdpa/fully_masked_ev_ne_e", H=2, L=4, S=5, E=6, Ev=9, mask="float-inf", fully_masked_rows=2,
          family=f),
    ]
    f = "sdpa-gqa"
    cases += [
        c("sdpa/gqa_h4_hkv2", H=4, Hkv=2, L=5, S=7, E=8, family=f),
        c("sdpa/gqa_h8_hkv2", B=2, H=8, Hkv=2, L=3, S=6, E=4, family=f),
        c("sdpa/gqa_h6_hkv3", H=6, Hkv=3, L=4, S=9, E=5, family=f),
        c("sdpa/gqa_h4_hkv2_causal_br", H=4, Hkv=2, L=4, S=9, E=8, is_causal=True, alignment="bottom_right", family=f),
        c("sdpa/gqa_h4_hkv2_causal_tl", H=4, Hkv=2, L=9, S=4, E=8, is_causal=True, family=f),
        c("sdpa/gqa_h8_hkv2_mask_bool", H=8, Hkv=2, L=4, S=6, E=4, mask="bool", family=f),
        c("sdpa/gqa_h4_hkv2_mask_float_hls", B=2, H=4, Hkv=2, L=3, S=5, E=4, mask="float",
          mask_shape=(4, 3, 5), family=f),
        c("sdpa/gqa_h4_hkv2_scale_ev", H=4, Hkv=2, L=5, S=6, E=8, Ev=6, scale=0.7, family=f),
        c("sdpa/mqa_h4_hkv1", H=4, Hkv=1, L=6, S=8, E=8, family=f),
        c("sdpa/mqa_h3_hkv1_ev_ne_e", B=2, H=3, Hkv=1, L=5, S=7, E=6, Ev=10, family=f),
    ]
    f = "sdpa-large-logits"
    cases += [
        c("sdpa/logits_1e3", H=2, L=6, S=8, E=16, logits=1e3, family=f),
        c("sdpa/logits_1e4", H=2, L=6, S=8, E=16, logits=1e4, family=f),
        c("sdpa/logits_neg_1e3", L=5, S=9, E=16, logits=1e3, negative_logits=True, family=f),
        c("sdpa/logits_neg_1e4", L=5, S=9, E=16, logits=1e4, negative_logits=True, family=f,
          description="every logit near -1e4: exp without the row maximum underflows to 0/0"),
        c("sdpa/logits_1e4_causal_tl", L=8, S=8, E=8, logits=1e4, is_causal=True, family=f),
        c("sdpa/logits_1e3_gqa", H=4, Hkv=2, L=4, S=6, E=8, logits=1e3, family=f),
        c("sdpa/logits_1e4_mask_float", L=5, S=7, E=8, logits=1e4, mask="float-inf", family=f),
        c("sdpa/logits_1e4_scale_explicit", L=4, S=6, E=8, logits=1e4, scale=0.9, family=f),
    ]
    f = "sdpa-long"
    cases += [
        c("sdpa/long_s512", L=16, S=512, E=16, family=f, description="S >= 512: blocked softmax"),
        c("sdpa/long_s512_l512_causal_tl", L=512, S=512, E=8, is_causal=True, family=f),
        c("sdpa/long_s1024_causal_br", L=32, S=1024, E=8, is_causal=True, alignment="bottom_right", family=f),
        c("sdpa/long_s777_mask_bool", L=8, S=777, E=8, mask="bool", mask_shape=(8, 777), family=f),
        c("sdpa/long_s2048_h2", H=2, L=4, S=2048, E=8, family=f),
        c("sdpa/long_s600_gqa_logits_1e3", H=4, Hkv=2, L=8, S=600, E=8, logits=1e3, family=f),
        c("sdpa/long_s513_fully_masked", L=6, S=513, E=4, mask="bool", mask_shape=(6, 513),
          fully_masked_rows=2, family=f),
    ]
    from attnconf.reference.position_cases import sdpa_bias_cases   # masks that ARE an ALiBi / T5 bias

    return cases + sdpa_bias_cases()


def sdpa_vjp_cases() -> list[Case]:
    def v(case_id, **kw):
        return sdpa_case(case_id, operation="sdpa_vjp", family="sdpa-vjp", **kw)

    return [
        v("sdpa_vjp/basic_l5_s7", H=2, L=5, S=7, E=6),
        v("sdpa_vjp/value_dim_e8_ev3", L=4, S=6, E=8, Ev=3),
        v("sdpa_vjp/scale_explicit", L=6, S=5, E=4, scale=0.35),
        v("sdpa_vjp/causal_tl_l8", L=8, S=8, E=4, is_causal=True),
        v("sdpa_vjp/causal_br_l7_s3", L=7, S=3, E=4, is_causal=True, alignment="bottom_right"),
        v("sdpa_vjp/gqa_h4_hkv2", B=2, H=4, Hkv=2, L=4, S=6, E=5),
        v("sdpa_vjp/mqa_h3_hkv1_mask_bool", H=3, Hkv=1, L=5, S=5, E=4, mask="bool"),
        v("sdpa_vjp/mask_float_fully_masked", H=2, L=6, S=7, E=4, mask="float-inf", fully_masked_rows=2),
        v("sdpa_vjp/logits_1e3", L=5, S=6, E=8, logits=1e3),
        v("sdpa_vjp/long_s512", L=8, S=512, E=8),
        v("sdpa_vjp/mask_bool_padding_causal_br", B=2, H=2, L=4, S=7, E=4, mask="bool",
          mask_shape=(2, 1, 1, 7), is_causal=True, alignment="bottom_right"),
    ]


# --- multi-head attention --------------------------------------------------------------------

def mha_case(case_id: str, clauses=(), *, B=1, L=5, S=None, D=16, Dkv=None, H=2, Hkv=None, E=None,
             Ev=None, bias=True, cross=False, mask=None, mask_shape=None, is_causal=False,
             fully_masked_rows=0, x_std=1.0, description="") -> Case:
    """One multi-head attention case; weights scaled by 1/sqrt(fan_in) like a trained layer.

    x_std: standard deviation of the inputs; large values give large logits (sdpa.range)."""
    Hkv = H if Hkv is None else Hkv
    E = D // H if E is None else E
    Ev = E if Ev is None else Ev
    S = (S or L) if cross else L
    Dkv = (Dkv or D) if cross else D
    seed = _seed(case_id)
    rng = np.random.default_rng(seed)
    x = _normal(rng, (B, L, D), x_std)
    inputs = {"query_input": x, "key_value_input": _normal(rng, (B, S, Dkv), x_std) if cross else x}
    shapes = {"wq": (D, H * E), "wk": (Dkv, Hkv * E), "wv": (Dkv, Hkv * Ev), "wo": (H * Ev, D)}
    for name, shape in shapes.items():
        inputs[name] = _normal(rng, shape, 1.0 / np.sqrt(shape[0]))
    clauses = list(clauses) + (["sdpa.range"] if x_std > 10 else [])
    if bias:
        for name, n in (("bq", H * E), ("bk", Hkv * E), ("bv", Hkv * Ev), ("bo", D)):
            inputs[name] = _normal(rng, (n,), 0.1)
        clauses.append("mha.bias")
    clauses.append("mha.cross" if cross else "mha.projection")
    if Hkv != H:
        clauses.append("mha.gqa")
    if mask is not None:
        m = _mask(rng, mask, tuple(mask_shape or (B, H, L, S)))
        if fully_masked_rows:
            m = np.broadcast_to(m, (B, H, L, S)).copy()
            rows = rng.choice(B * H * L, size=fully_masked_rows, replace=False)
            m.reshape(B * H * L, S)[rows] = False if mask == "bool" else -np.inf
            clauses.append("sdpa.fully_masked")
        inputs["attn_mask"] = m
        clauses.append("mha.mask")
    if is_causal:
        clauses += ["mha.mask", "sdpa.causal.top_left"]
    options = {"num_heads": H, "num_kv_heads": Hkv, "is_causal": is_causal}
    return _make_case(case_id, "multi_head_attention", clauses, inputs, options, seed, "mha", description)


def mha_cases() -> list[Case]:
    m = mha_case
    return [
        m("mha/self_bias_d16_h2", D=16, H=2, L=6),
        m("mha/self_nobias_d12_h3", D=12, H=3, L=7, bias=False),
        m("mha/self_b3_d10_h2_l9", B=3, D=10, H=2, L=9),
        m("mha/cross_bias_d16_dkv10_h4", D=16, Dkv=10, H=4, L=5, S=9, cross=True),
        m("mha/cross_nobias_d8_dkv24_h2", D=8, Dkv=24, H=2, L=7, S=4, cross=True, bias=False),
        m("mha/gqa_self_h4_hkv2", D=16, H=4, Hkv=2, L=6),
        m("mha/gqa_cross_h6_hkv2_bias", D=12, Dkv=9, H=6, Hkv=2, L=4, S=7, cross=True),
        m("mha/mqa_self_h4_hkv1_nobias", D=16, H=4, Hkv=1, L=5, bias=False),
        m("mha/self_causal", D=16, H=2, L=8, is_causal=True),
        m("mha/self_mask_bool_padding", B=2, D=12, H=3, L=6, mask="bool", mask_shape=(2, 1, 1, 6)),
        m("mha/cross_mask_float_ls", D=8, H=2, L=5, S=8, cross=True, mask="float", mask_shape=(5, 8)),
        m("mha/self_ev_ne_e", D=12, H=2, E=5, Ev=7, L=5, description="head dims chosen freely: E=5, Ev=7"),
        m("mha/self_fully_masked_rows", D=8, H=2, L=5, mask="bool", fully_masked_rows=2),
        m("mha/self_d64_h8_l32", D=64, H=8, L=32),
        m("mha/self_large_inputs", D=16, H=2, L=7, x_std=40.0,
          description="inputs of size ~40: logits of order 1e3 must not overflow"),
    ]


# --- sinusoidal encodings --------------------------------------------------------------------

def enc_case(case_id: str, clauses=(), *, T=32, d=16, base=10000.0, offset=0, layout="interleaved",
             frequencies="vaswani", description="") -> Case:
    clauses = list(clauses) + [f"enc.frequencies.{frequencies}", f"enc.layout.{layout}"]
    if d % 2:
        clauses.append("enc.odd_dim")
    if base != 10000.0:
        clauses.append("enc.base")
    options = {"num_positions": T, "dim": d, "base": base, "offset": offset, "layout": layout,
               "frequencies": frequencies}
    family = "enc-long" if offset + T > 2048 else "enc"
    return _make_case(case_id, "sinusoidal_encoding", clauses, {}, options, _seed(case_id), family, description)


def encoding_cases() -> list[Case]:
    e = enc_case
    cases = []
    for freq in ("vaswani", "t2t"):
        for layout in ("interleaved", "concat", "cos_first"):
            for d in (16, 7):
                cases.append(e(f"enc/{freq}_{layout}_d{d}", T=40, d=d, layout=layout, frequencies=freq))
        for d in (1, 2, 3):
            cases.append(e(f"enc/{freq}_d{d}", T=24, d=d, frequencies=freq, layout="concat" if freq == "t2t" else "interleaved"))
    cases += [
        e("enc/offset_1000", T=32, d=16, offset=1000),
        e("enc/offset_100000", T=32, d=32, offset=100_000),
        e("enc/offset_1000000", T=16, d=32, offset=1_000_000, description="p up to 10^6 + 15"),
        e("enc/offset_999990_t2t", T=16, d=33, offset=999_990, frequencies="t2t", layout="concat"),
        e("enc/offset_2_fairseq", T=20, d=16, offset=2, frequencies="t2t", layout="concat",
          description="fairseq positions start at padding_idx + 1"),
        e("enc/base_500", T=32, d=16, base=500.0),
        e("enc/base_1e6_t2t_cos_first", T=32, d=12, base=1e6, frequencies="t2t", layout="cos_first"),
        e("enc/base_2_odd", T=16, d=9, base=2.0),
        e("enc/d128_t64", T=64, d=128),
        e("enc/table_8192_d32", T=8192, d=32, description="a long table: float32 angles lose ~1e-3"),
        e("enc/table_4096_t2t_d16", T=4096, d=16, frequencies="t2t", layout="concat"),
    ]
    return cases


# --- random case families (calibration: attnconf.conformance.calibration.random_case) ---------
# A family builder is (rng, i, case_id) -> Case; each entry's `families` path names a dict
# {family: builder}. Shapes come from a small pool per family and values from the seed: a pool
# lets per-shape-compiling frameworks (JAX) reuse their kernels. Static options (explicit scale,
# mask shape, alignment) cycle with the shape rather than vary freely: jitted kernels compile
# once per combination, so a few combinations keep JAX fast.
_SDPA_SHAPES = [dict(B=1, H=1, L=4, S=6, E=4), dict(B=2, H=2, L=5, S=3, E=8, Ev=5),
                dict(B=1, H=3, L=1, S=9, E=2), dict(B=2, H=1, L=7, S=7, E=6)]


def _pool(i, **kw):
    return dict(_SDPA_SHAPES[i % len(_SDPA_SHAPES)], **kw)


def _fam_mask(i):
    kw = _pool(i, mask=["bool", "float", "float-inf"][(i // 4) % 3])
    b, h, l, s = kw["B"], kw["H"], kw["L"], kw["S"]
    kw["mask_shape"] = [(b, h, l, s), (l, s), (b, 1, 1, s), (1, s)][i % 4]
    return kw


def _fam_fully_masked(i):
    kw = _pool(i, mask=("bool", "float")[(i // 4) % 2])
    kw["fully_masked_rows"] = 1 + (i // 8) % min(3, kw["B"] * kw["H"] * kw["L"])
    return kw


def _fam_gqa(i):
    hkv, g = [(1, 2), (2, 2), (1, 4), (2, 3)][i % 4]
    return dict(B=1 + i % 2, H=hkv * g, Hkv=hkv, L=[3, 5][i % 2], S=[6, 4][i % 2], E=4,
                is_causal=bool((i // 4) % 2))


def _fam_vjp(i):
    kw = _pool(i)
    if (i // 4) % 3 == 1:
        kw.update(is_causal=True)
    if (i // 4) % 3 == 2:
        kw.update(mask="bool")
    return kw


def _sdpa_family(family, make_kw, operation="sdpa"):
    def build(rng, i, case_id):
        return sdpa_case(case_id, operation=operation, family=family, **make_kw(i))
    return build


SDPA_FAMILIES = {
    "sdpa": _sdpa_family("sdpa", lambda i: _pool(i, scale=(None, 0.35, 1.5)[(i // 4) % 3])),
    "sdpa-mask": _sdpa_family("sdpa-mask", _fam_mask),
    "sdpa-causal": _sdpa_family("sdpa-causal", lambda i: _pool(
        i, is_causal=True, alignment=("top_left", "bottom_right")[(i // 4) % 2])),
    "sdpa-fully-masked": _sdpa_family("sdpa-fully-masked", _fam_fully_masked),
    "sdpa-gqa": _sdpa_family("sdpa-gqa", _fam_gqa),
    "sdpa-large-logits": _sdpa_family("sdpa-large-logits", lambda i: _pool(
        i, logits=[1e2, 1e3, 1e4][i % 3], negative_logits=bool((i // 3) % 2))),
    "sdpa-long": _sdpa_family("sdpa-long", lambda i: dict(B=1, H=1, L=[2, 3][i % 2], S=[300, 520][(i // 2) % 2], E=4)),
}
SDPA_VJP_FAMILIES = {"sdpa-vjp": _sdpa_family("sdpa-vjp", _fam_vjp, operation="sdpa_vjp")}


def _fam_mha(rng, i, case_id):
    variants = [dict(D=8, H=2, L=4), dict(D=6, H=3, L=5, bias=False),
                dict(D=8, Dkv=5, H=2, L=3, S=6, cross=True), dict(D=8, H=4, Hkv=2, L=4)]
    return mha_case(case_id, **variants[i % 4])


MHA_FAMILIES = {"mha": _fam_mha}


def _fam_enc(rng, i, case_id):
    d = [8, 7, 16, 2][i % 4]
    freq = ("vaswani", "t2t")[(i // 4) % 2]
    layout = ("interleaved", "concat", "cos_first")[(i // 8) % 3]
    return enc_case(case_id, T=16, d=d, frequencies=freq, layout=layout,
                    offset=int(rng.integers(0, 64)), base=[10000.0, 500.0][(i // 24) % 2])


def _fam_enc_long(rng, i, case_id):
    return enc_case(case_id, T=8, d=[16, 9][i % 2], offset=int(rng.integers(2048, 1_000_000)),
                    frequencies=("vaswani", "t2t")[(i // 2) % 2],
                    layout=("interleaved", "concat", "cos_first")[(i // 4) % 3])


ENCODING_FAMILIES = {"enc": _fam_enc, "enc-long": _fam_enc_long}


# --- rotary position embeddings --------------------------------------------------------------

def _linear(f):
    return {"rope_type": "linear", "factor": f}


def _dynamic(f, l0):
    return {"rope_type": "dynamic", "factor": f, "original_max_position_embeddings": l0}


def _yarn(f, l0, **extra):
    return {"rope_type": "yarn", "factor": f, "original_max_position_embeddings": l0, **extra}


def _llama3(f, l0, **extra):
    return {"rope_type": "llama3", "factor": f, "original_max_position_embeddings": l0, **extra}


def rope_case(case_id: str, clauses=(), *, B=1, H=2, T=8, E=16, rotary_dim=None, layout="interleaved",
              offset=0, positions=None, base=10000.0, scaling=None, description="") -> Case:
    """x (B, H, T, E) golden-representable; positions offset + arange(T) unless given ((T,) or (B, T))."""
    rng = np.random.default_rng(_seed(case_id))
    x = _normal(rng, (B, H, T, E))
    pos = np.arange(offset, offset + T) if positions is None else np.asarray(positions)
    clauses = list(clauses) + [f"rope.layout.{layout}"]
    if rotary_dim is not None and rotary_dim < E:
        clauses.append("rope.partial")
    if scaling is not None:
        clauses.append(f"rope.scaling.{scaling['rope_type']}")
    options = {"base": base, "rotary_dim": rotary_dim, "scaling": scaling, "layout": layout}
    family = "rope-long" if int(pos.max()) >= 2048 else "rope"
    return _make_case(case_id, "rotary_embedding", clauses, {"x": x, "positions": pos.astype(np.int64)},
                      options, _seed(case_id), family, description)


def rope_cases() -> list[Case]:
    c = rope_case
    cases = []
    for layout in ("interleaved", "half"):
        cases += [c(f"rope/{layout}_e64", T=16, E=64, layout=layout),
                  c(f"rope/{layout}_e128_llama", B=1, H=4, T=32, E=128, layout=layout, base=500_000.0),
                  c(f"rope/{layout}_e2", T=12, E=2, layout=layout, description="the smallest head: one pair"),
                  c(f"rope/{layout}_odd_heads_h3", B=2, H=3, T=6, E=8, layout=layout),
                  c(f"rope/{layout}_partial_r16_e64", T=8, E=64, rotary_dim=16, layout=layout,
                    description="GPT-NeoX rotary_pct 0.25: channels 16 … 63 pass through"),
                  c(f"rope/{layout}_positions_1e6", T=16, E=32, offset=10 ** 6 - 8, layout=layout,
                    description="positions 10^6 − 8 … 10^6 + 7: float32 angles lose ~0.1 rad")]
    rng = np.random.default_rng(_seed("rope/positions"))
    cases += [
        c("rope/partial_r2_e8", T=8, E=8, rotary_dim=2),
        c("rope/partial_r10_e40_half", H=3, T=8, E=40, rotary_dim=10, layout="half",
          description="HF partial_rotary_factor 0.25 on head_dim 40"),
        c("rope/decode_p100", T=1, E=32, offset=100, description="one decode step at past length 100"),
        c("rope/decode_p4095_t4_half", T=4, E=64, offset=4095, layout="half",
          description="a 4-token decode step at past length 4095"),
        c("rope/decode_batch_offsets", B=3, H=2, T=2, E=16,
          positions=np.array([[7, 8], [300, 301], [65_536, 65_537]]),
          description="per-batch past lengths (B, T): a batched KV-cache decode step"),
        c("rope/per_batch_positions", B=2, H=1, T=8, E=16,
          positions=np.array([[0, 0, 0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7]]),
          description="left padding: repeated position 0, then the real tokens"),
        c("rope/positions_sparse_1e6", T=12, E=16, positions=np.sort(rng.integers(0, 10 ** 6 + 1, 12))[::-1],
          description="arbitrary positions up to 10^6, not increasing"),
        c("rope/positions_2pow24", T=4, E=16, offset=2 ** 24 - 2,
          description="around 2^24, where float32 stops holding integers"),
        c("rope/base_100", T=32, E=16, base=100.0),
        c("rope/long_t1024", T=1024, E=16, description="a long prefill: angles up to 1023"),
        c("rope/linear_f2", T=16, E=32, scaling=_linear(2.0)),
        c("rope/linear_f8_long", T=8, E=32, offset=50_000, scaling=_linear(8.0), layout="half"),
        c("rope/dynamic_below_l0", T=16, E=32, offset=40, scaling=_dynamic(2.0, 64),
          description="L = 56 <= L0 = 64: the unscaled base"),
        c("rope/dynamic_above_l0", T=16, E=32, offset=184, scaling=_dynamic(2.0, 64),
          description="L = 200 > L0 = 64: base' = base·(2·200/64 − 1)^(32/30)"),
        c("rope/dynamic_above_l0_per_batch_half", B=2, T=4, E=16, layout="half", scaling=_dynamic(4.0, 128),
          positions=np.array([[0, 1, 2, 3], [996, 997, 998, 999]]),
          description="L is the longest row's: both rows use base' of L = 1000"),
        c("rope/dynamic_1e6", T=8, E=64, offset=10 ** 6 - 8, scaling=_dynamic(8.0, 4096)),
        c("rope/yarn_f4_below_l0", T=16, E=64, offset=100, scaling=_yarn(4.0, 2048)),
        c("rope/yarn_f4_above_l0", T=16, E=64, offset=8000, scaling=_yarn(4.0, 2048)),
        c("rope/yarn_untruncated", T=16, E=64, offset=3000, scaling=_yarn(4.0, 2048, truncate=False),
          description="keras-hub / gpt-oss: no floor/ceil of the correction range"),
        c("rope/yarn_attention_factor_half", T=8, E=32, offset=500, layout="half",
          scaling=_yarn(16.0, 1024, attention_factor=1.5, beta_fast=16.0, beta_slow=2.0)),
        c("rope/yarn_partial_1e6", T=8, E=64, rotary_dim=32, offset=10 ** 6 - 4, scaling=_yarn(32.0, 4096)),
        c("rope/llama3_below_l0", T=16, E=128, offset=1000, base=500_000.0, scaling=_llama3(8.0, 8192),
          description="Llama 3.1's rope_scaling"),
        c("rope/llama3_above_l0_half", T=16, E=128, offset=100_000, base=500_000.0, layout="half",
          scaling=_llama3(8.0, 8192)),
        c("rope/llama3_custom_factors", T=8, E=64, offset=5000, scaling=_llama3(4.0, 512, low_freq_factor=2.0,
                                                                               high_freq_factor=8.0)),
    ]
    return cases


_ROPE_SCALINGS = (None, _linear(4.0), _dynamic(2.0, 32), _yarn(8.0, 256), _yarn(4.0, 256, truncate=False),
                  _llama3(8.0, 128))


def _fam_rope(rng, i, case_id):
    E = [16, 8, 2, 32][i % 4]
    r = [None, None, None, 16][i % 4]
    scaling = _ROPE_SCALINGS[(i // 8) % len(_ROPE_SCALINGS)]
    if E == 2 and scaling and scaling["rope_type"] == "dynamic":
        scaling = None   # dynamic needs r > 2 (its exponent is r/(r−2))
    return rope_case(case_id, B=1 + i % 2, H=[1, 3][(i // 2) % 2], T=8, E=E, rotary_dim=r,
                     layout=("interleaved", "half")[(i // 4) % 2], offset=int(rng.integers(0, 64)),
                     scaling=scaling)


def _fam_rope_long(rng, i, case_id):
    return rope_case(case_id, T=4, E=[16, 64][i % 2], layout=("interleaved", "half")[(i // 2) % 2],
                     offset=int(rng.integers(2048, 1_000_000)),
                     scaling=_ROPE_SCALINGS[(i // 4) % len(_ROPE_SCALINGS)])


ROPE_FAMILIES = {"rope": _fam_rope, "rope-long": _fam_rope_long}


# --- the whole catalogue ---------------------------------------------------------------------

def catalogue() -> list[Case]:
    """Every golden case, inputs only (expected/scale empty), in a stable order.

    The cases of every registered operation (attnconf.operations), in registry order, each from
    the builder its entry's `cases` path names (a plug-in's operation included). Deterministic:
    each case's inputs come from its own seed (crc32 of its id). Every cited clause exists in
    spec/index.json or is one a registered operation defines (`defines_clauses`); a case citing
    an unknown id raises ValueError.
    """
    from attnconf import operations

    cases = [case for op in operations.operations() if op.cases for case in op.resolve("cases")()]
    _check(cases)
    return cases


def _check(cases: list[Case]) -> None:
    from attnconf import spec
    from attnconf.validation import fail

    from attnconf import operations

    known = set(spec.clause_ids()).union(*(op.defines_clauses for op in operations.operations()))
    registered = operations.names()
    seen = set()
    for case in cases:
        if case.id in seen:
            fail("case ids", "unique", repr(case.id))
        seen.add(case.id)
        unknown = sorted(set(case.clauses) - known)
        if unknown:
            fail(f"clauses of case {case.id}", "ids from spec/index.json", unknown)
        if case.operation not in registered:
            fail(f"operation of case {case.id}", "one of " + ", ".join(registered), repr(case.operation))
