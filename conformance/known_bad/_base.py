"""A correct NumPy implementation of spec/, built from small overridable steps.

Each known-bad implementation of the zoo subclasses `ZooAdapter` and overrides exactly one step,
so that the bug it mirrors is the only difference from a conforming implementation. `ZooAdapter`
itself is the control: calibration and tests/test_known_bad_*.py check that it passes, so a
"caught" bug is caught for its bug and not for a flaw in this base.

Computation precision follows what real kernels do: float64 in float64; float32 in float32;
float16/bfloat16 upcast to float32 and round the output once. Must not be imported by product
code other than calibration (it ships only so that `attnconf calibrate` runs anywhere).

Shape legend: B batch, H query heads, Hkv kv heads, L queries, S keys, E head dim, Ev value dim,
D model dim.
"""
from __future__ import annotations

import numpy as np

from attnconf.adapters.base import Adapter
from attnconf.adapters.numpy_reference import NumpyReferenceAdapter
from attnconf.dtypes import dtype_name, numpy_dtype

from ._positions import PositionSteps   # ALiBi, T5 buckets/bias, Shaw index, position ids, as steps
from ._rope_cache import CacheSteps      # RoPE from given cos/sin caches (rope.cache.*), as steps
from ._paged import PagedSteps           # the paged KV cache (paged.*), as steps
from ._sdpa_options import OptionSteps   # the kernel options of sdpa (sdpa.opt.*), as steps
from ._lse import LseSteps               # sdpa_lse and merge_attention_states (sdpa.lse.*, sdpa.merge.*)
from ._varlen import VarlenSteps         # packed variable-length attention (varlen.*), as steps

# The zoo claims everything the reference supports: a known-bad implementation must be caught on
# the same clauses a correct one is judged on.
FULL_CAPS = NumpyReferenceAdapter.capabilities


class ZooAdapter(CacheSteps, PagedSteps, LseSteps, OptionSteps, PositionSteps, VarlenSteps, Adapter):
    """The correct control implementation; subclasses break one step each."""

    name = "known-bad/control"
    framework = "numpy"
    description = "correct NumPy implementation (control for the known-bad zoo)"
    capabilities = FULL_CAPS
    bug_class = ""          # subclasses: the bug class they mirror (docs/findings.md)

    def version(self) -> str:
        return np.__version__

    # -- conversion -----------------------------------------------------------------------
    def from_numpy(self, array, dtype):
        return np.asarray(array).astype(numpy_dtype(dtype))

    def from_numpy_bool(self, mask):
        return np.asarray(mask, dtype=bool)

    def to_numpy(self, value):
        return np.asarray(value)

    # -- precision --------------------------------------------------------------------------
    def compute_dtype(self, name: str) -> np.dtype:
        """float64 stays float64; everything else computes in float32 (as torch's math path)."""
        return np.dtype(np.float64) if name == "float64" else np.dtype(np.float32)

    def output_dtype(self, name: str) -> np.dtype:
        return numpy_dtype(name)

    # -- sdpa steps -------------------------------------------------------------------------
    def default_scale(self, e: int, ev: int) -> float:
        return 1.0 / np.sqrt(e)

    def effective_scale(self, scale, e: int, ev: int) -> float:
        return self.default_scale(e, ev) if scale is None else scale

    def expand_kv(self, x, h: int):
        """(B, Hkv, S, ·) -> (B, H, S, ·): query head h uses kv head h // (H // Hkv)."""
        return np.repeat(x, h // x.shape[1], axis=1)

    def logits(self, q, k, scale):
        return np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(scale)

    def causal_allowed(self, l: int, s: int, alignment: str):
        """(L, S) bool: key j visible to query i."""
        shift = 0 if alignment == "top_left" else s - l
        return np.arange(s)[None, :] <= np.arange(l)[:, None] + shift

    def bool_allowed(self, mask):
        return np.asarray(mask, dtype=bool)            # True takes part (sdpa.mask.bool)

    def masked_logits(self, logits, attn_mask, causal):
        ninf = logits.dtype.type(-np.inf)
        if attn_mask is not None:
            m = np.asarray(attn_mask)
            if m.dtype == np.bool_:
                logits = np.where(self.bool_allowed(m), logits, ninf)
            else:
                logits = logits + m.astype(logits.dtype)
        if causal is not None:
            logits = np.where(causal, logits, ninf)
        return logits

    def softmax(self, logits):
        """Row softmax over keys with the max subtracted; fully-masked rows give 0 weights."""
        row_max = logits.max(axis=-1, keepdims=True)
        dead = np.isneginf(row_max)
        with np.errstate(invalid="ignore"):
            e = np.exp(logits - np.where(dead, 0, row_max))
            p = e / e.sum(axis=-1, keepdims=True)
        return np.where(dead, 0, p).astype(logits.dtype)

    def post_softmax(self, p, attn_mask):
        return p

    def combine(self, p, v):
        return np.matmul(p, v)

    def finish(self, out, p, v):
        """Hook on the output after combining (fully-masked policy bugs live here)."""
        return out

    # -- sdpa -------------------------------------------------------------------------------
    def _prepare(self, query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa):
        name = dtype_name(query.dtype)
        cd = self.compute_dtype(name)
        q, k, v = (np.asarray(a).astype(cd) for a in (query, key, value))
        h, hkv = q.shape[1], k.shape[1]
        if h != hkv:
            if not enable_gqa or h % hkv:
                raise ValueError(f"query heads {h} and kv heads {hkv} need enable_gqa=True and H % Hkv == 0")
            k, v = self.expand_kv(k, h), self.expand_kv(v, h)
        s = self.effective_scale(scale, q.shape[-1], v.shape[-1])
        l, sk = q.shape[-2], k.shape[-2]
        causal = self.causal_allowed(l, sk, causal_alignment) if is_causal else None
        logits = self.masked_logits(self.logits(q, k, s), attn_mask, causal)
        return name, q, k, v, s, logits, hkv

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        if options:   # sdpa.opt.*: _sdpa_options.OptionSteps
            return self.sdpa_options(query, key, value, attn_mask=attn_mask, is_causal=is_causal,
                                     causal_alignment=causal_alignment, scale=scale,
                                     enable_gqa=enable_gqa, **options)
        name, q, k, v, s, logits, _ = self._prepare(query, key, value, attn_mask, is_causal,
                                                    causal_alignment, scale, enable_gqa)
        p = self.post_softmax(self.softmax(logits), attn_mask)
        out = self.finish(self.combine(p, v), p, v)
        return out.astype(self.output_dtype(name))

    # -- gradients ---------------------------------------------------------------------------
    def grad_dq_dk(self, ds, q, k, s):
        return np.matmul(ds, k) * s, np.matmul(np.swapaxes(ds, -1, -2), q) * s

    def grad_dv(self, p, g):
        return np.matmul(np.swapaxes(p, -1, -2), g)

    def grad_ds(self, p, dp):
        return p * (dp - (dp * p).sum(axis=-1, keepdims=True))

    def reduce_kv_grad(self, d, hkv: int):
        """(B, H, S, ·) -> (B, Hkv, S, ·): sum over the query heads of each group."""
        b, h = d.shape[:2]
        return d.reshape(b, hkv, h // hkv, *d.shape[2:]).sum(axis=2)

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        if options:   # sdpa.opt.grad: _sdpa_options.OptionSteps
            return self.sdpa_vjp_options(query, key, value, grad_output, attn_mask=attn_mask,
                                         is_causal=is_causal, causal_alignment=causal_alignment,
                                         scale=scale, enable_gqa=enable_gqa, **options)
        name, q, k, v, s, logits, hkv = self._prepare(query, key, value, attn_mask, is_causal,
                                                      causal_alignment, scale, enable_gqa)
        g = np.asarray(grad_output).astype(q.dtype)
        p = self.softmax(logits)
        dv = self.grad_dv(p, g)
        ds = self.grad_ds(p, np.matmul(g, np.swapaxes(v, -1, -2)))
        dq, dk = self.grad_dq_dk(ds, q, k, s)
        if hkv != q.shape[1]:
            dk, dv = self.reduce_kv_grad(dk, hkv), self.reduce_kv_grad(dv, hkv)
        out = self.output_dtype(name)
        return dq.astype(out), dk.astype(out), dv.astype(out)

    # -- multi-head attention ----------------------------------------------------------------
    def project(self, x, w, b):
        y = np.matmul(x, w)
        return y if b is None else y + b

    def split_heads(self, x, heads: int):
        """(B, T, heads·E) -> (B, heads, T, E): head h owns columns h·E … (h+1)·E−1."""
        bsz, t, width = x.shape
        return x.reshape(bsz, t, heads, width // heads).transpose(0, 2, 1, 3)

    def merge_heads(self, x):
        bsz, h, t, ev = x.shape
        return x.transpose(0, 2, 1, 3).reshape(bsz, t, h * ev)

    def multi_head_attention(self, query_input, key_value_input, weights, *, num_heads,
                             num_kv_heads=None, attn_mask=None, is_causal=False):
        name = dtype_name(query_input.dtype)
        cd = self.compute_dtype(name)
        w = {n: np.asarray(a).astype(cd) for n, a in weights.items()}
        x = np.asarray(query_input).astype(cd)
        kv = np.asarray(key_value_input).astype(cd)
        hkv = num_kv_heads or num_heads
        q = self.split_heads(self.project(x, w["wq"], w.get("bq")), num_heads)
        k = self.split_heads(self.project(kv, w["wk"], w.get("bk")), hkv)
        v = self.split_heads(self.project(kv, w["wv"], w.get("bv")), hkv)
        o = self.sdpa(q, k, v, attn_mask=attn_mask, is_causal=is_causal, enable_gqa=hkv != num_heads)
        out = self.project(self.merge_heads(np.asarray(o).astype(cd)), w["wo"], w.get("bo"))
        return out.astype(self.output_dtype(name))

    # -- sinusoidal encodings ----------------------------------------------------------------
    def angle_dtype(self, name: str) -> np.dtype:
        """float64 tables compute angles in float64; all others in float32 (spec enc.dtype)."""
        return np.dtype(np.float64) if name == "float64" else np.dtype(np.float32)

    def positions(self, num_positions: int, offset: int, dt):
        with np.errstate(over="ignore"):
            return (np.arange(num_positions, dtype=np.float64) + offset).astype(dt)

    def frequencies(self, dim: int, base: float, kind: str, dt):
        if kind == "vaswani":
            i = np.arange((dim + 1) // 2, dtype=np.float64)
            return np.power(base, -2.0 * i / dim).astype(dt)
        n = dim // 2
        i = np.arange(n, dtype=np.float64)
        return np.exp(-i * np.log(base) / max(n - 1, 1)).astype(dt)

    def sin_cos_float64(self, pos, w, dim: int, base: float, kind: str):
        """float64 tables reduce p·ω in double-double (the reference's building blocks): a naive
        float64 angle errs by ~p·2^-53, up to 1e5 ulp at p = 1e6, which the float64 default
        level does not allow (the float64 baseline is the accurate table). A frequency that
        differs from the canonical one (a zoo bug) keeps its own value, without a low part."""
        from attnconf.reference import encoding as enc

        hi, lo, _ = enc.frequencies_dd(dim, base, kind)
        w = np.asarray(w, np.float64)
        same = hi.shape == w.shape and np.allclose(w, hi, rtol=1e-12, atol=0)
        w_lo = (hi - w) + lo if same else np.zeros_like(w)     # hi - w is exact (Sterbenz)
        rh, rl = enc.reduced_angles(np.asarray(pos, np.float64), np.asarray(w, np.float64), w_lo)
        sh, ch = np.sin(rh), np.cos(rh)
        return sh + ch * rl, ch - sh * rl

    def arrange(self, sin, cos, dim: int, layout: str, kind: str):
        """Place sin/cos columns by layout; odd d: t2t appends a zero column, vaswani ends in sin."""
        t = sin.shape[0]
        if layout == "interleaved":
            table = np.zeros((t, sin.shape[1] + cos.shape[1]), dtype=sin.dtype)
            table[:, 0::2] = sin
            table[:, 1::2] = cos
        elif layout == "concat":
            table = np.concatenate([sin, cos], axis=1)
        else:
            table = np.concatenate([cos, sin], axis=1)
        if table.shape[1] < dim:
            table = np.concatenate([table, np.zeros((t, dim - table.shape[1]), table.dtype)], axis=1)
        return table

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        dt = self.angle_dtype(dtype)
        pos = self.positions(num_positions, offset, dt)
        w = self.frequencies(dim, base, frequencies, dt)
        if dt == np.float64:
            sin, cos = self.sin_cos_float64(pos, w, dim, base, frequencies)
        else:
            with np.errstate(over="ignore", invalid="ignore"):   # low-precision zoo bugs overflow
                angles = pos[:, None] * w[None, :]
                sin, cos = np.sin(angles), np.cos(angles)
        if frequencies == "vaswani":
            cos = cos[:, : dim // 2]                 # odd d: the last sin has no cos partner
        table = self.arrange(sin, cos, dim, layout, frequencies)
        return table.astype(numpy_dtype(dtype))

    # -- rotary embeddings (spec rope.*) -------------------------------------------------------
    def index_from_numpy(self, arr):
        return np.asarray(arr).astype(np.int64)

    def rope_frequencies(self, r: int, base: float, scaling, positions):
        """(ω_hi, ω_lo, m): the spec's frequencies (and YaRN attention factor) as double-doubles."""
        from attnconf.reference import rope

        rule = rope.check_scaling(scaling, r)
        hi, lo, m, _ = rope.frequencies_dd(r, base, rule, rope._rule_length(rule, positions))
        return hi, lo, m

    def rope_pairs(self, r: int, layout: str):
        i = np.arange(r // 2)
        return (2 * i, 2 * i + 1) if layout == "interleaved" else (i, i + r // 2)

    def rope_cos_sin(self, positions, w_hi, w_lo, dt):
        """float64: p·ω reduced in double-double (a naive float64 angle is 1e5 ulp off at 1e6);
        otherwise float32 angles, as real kernels do. positions (P, T) -> (P, 1, T, r/2)."""
        from attnconf.reference import encoding as enc

        P, T = positions.shape
        if dt == np.float64:
            rh, rl = enc.reduced_angles(positions.reshape(-1).astype(np.float64), w_hi, w_lo)
            sh, ch = np.sin(rh), np.cos(rh)
            c, s = ch - sh * rl, sh + ch * rl
            return c.reshape(P, 1, T, -1), s.reshape(P, 1, T, -1)
        theta = positions.astype(np.float32)[:, None, :, None] * w_hi.astype(np.float32)
        return np.cos(theta), np.sin(theta)

    def rotary_embedding(self, x, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                         layout="interleaved"):
        name = dtype_name(x.dtype)
        dt = self.compute_dtype(name)
        xc = np.asarray(x).astype(dt)
        pos = np.asarray(positions, dtype=np.int64).reshape(-1, xc.shape[2])
        r = xc.shape[-1] if rotary_dim is None else rotary_dim
        w_hi, w_lo, m = self.rope_frequencies(r, float(base), scaling, pos)
        c, s = self.rope_cos_sin(pos, w_hi, w_lo, dt)
        c, s = (c * m).astype(dt), (s * m).astype(dt)
        ia, ib = self.rope_pairs(r, layout)
        a, b = xc[..., ia], xc[..., ib]
        out = xc.copy()
        out[..., ia], out[..., ib] = a * c - b * s, b * c + a * s
        return out.astype(self.output_dtype(name))
