"""JAX adapters: `jax.nn.dot_product_attention` (implementation "xla", jitted; "cudnn" on GPU) and
attnconf's own sinusoidal encoding written in jax.numpy.

JAX's layout is (B, T, N, H) — heads on axis 2 — so tensors are transposed at the border; its
mask/bias are (B, N, T, S) like the canonical (B, H, L, S) and need no change. Nothing of JAX's
behaviour is repaired (fully-masked rows come back as JAX computes them).

float64: JAX computes in float32 unless x64 is on. We never flip the global flag: each float64
call runs inside the thread-local `jax.enable_x64(True)` context (jax.experimental.enable_x64 on
older JAX), so a user's own JAX code in the same process keeps its setting.
jax is imported inside methods only.
"""
from __future__ import annotations

import contextlib
import functools
import math

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.dtypes import DTYPE_NAMES, numpy_dtype
from attnconf.errors import SetupError


def select_jax_platform(requested: str, platforms) -> str:
    """The JAX platform ("cpu" | "gpu") for an attnconf device name ("cuda" is accepted as "gpu").

    `platforms`: the platforms JAX can see. SetupError when a GPU is asked for and there is none.
    """
    if requested == "cpu":
        return "cpu"
    if requested in ("cuda", "gpu"):
        if "gpu" not in platforms and "cuda" not in platforms:
            raise SetupError(f"device {requested!r} should be a GPU JAX can see, but JAX has only "
                             f"{', '.join(sorted(platforms)) or 'no'} platforms")
        return "gpu"
    raise SetupError(f"device should be one of 'cpu', 'cuda', 'gpu', but got {requested!r}")


def _platforms() -> set[str]:
    import jax

    found = set()
    for platform in ("cpu", "gpu"):
        try:
            if jax.devices(platform):
                found.add(platform)
        except RuntimeError:  # "Unknown backend: 'gpu' requested ..."
            pass
    return found


def x64(dtype_name: str):
    """A context enabling float64 in JAX for this thread only when `dtype_name` is float64."""
    import jax

    if dtype_name != "float64" or jax.config.jax_enable_x64:
        return contextlib.nullcontext()
    if hasattr(jax, "enable_x64") and not hasattr(jax.enable_x64, "__enter__"):
        return jax.enable_x64(True)  # JAX >= 0.7: a config State called to give a context
    from jax.experimental import enable_x64  # older JAX

    return enable_x64()


def _name(x) -> str:
    return str(np.dtype(x.dtype))


def native_dtype(name: str):
    """The dtype a jax plug-in function's dtype= receives (a NumPy/ml_dtypes dtype, as jnp uses)."""
    return numpy_dtype(name)


def vjp(fn, primals, cotangent):
    """Gradients of <fn(*primals), cotangent> through jax.vjp (float64 under the x64 context)."""
    import jax

    with x64(_name(primals[0])):
        _, pullback = jax.vjp(fn, *primals)
        return pullback(cotangent)


class JaxArrays:
    """NumPy <-> jax.Array conversion, shared by every JAX adapter and JAX plug-in functions."""

    framework = "jax"
    modules = ("jax", "jaxlib")

    @classmethod
    def availability(cls):
        try:
            import jax  # noqa: F401
        except Exception as exc:
            return False, f"jax is not importable: {type(exc).__name__}: {exc}"
        return True, ""

    def device_status(self):
        try:
            select_jax_platform(self.device, _platforms())
        except SetupError as exc:
            return False, str(exc)
        return True, ""

    def _device(self):
        import jax

        return jax.devices(select_jax_platform(self.device, _platforms()))[0]

    def from_numpy(self, array, dtype):
        import jax

        with x64(dtype):
            return jax.device_put(np.asarray(array).astype(numpy_dtype(dtype)), self._device())

    def from_numpy_bool(self, mask):
        import jax

        return jax.device_put(np.asarray(mask, dtype=bool), self._device())

    def index_from_numpy(self, arr):
        import jax

        # int32 unless x64 is on: jnp.asarray's own choice (int64 would be truncated with a warning).
        dtype = np.int64 if jax.config.jax_enable_x64 else np.int32
        return jax.device_put(np.asarray(arr).astype(dtype), self._device())

    def to_numpy(self, value):
        return np.asarray(value)

    def compute_context(self, dtype):
        """Context for running user code on arrays of `dtype` (a name or a dtype; float64 needs x64)."""
        return x64(dtype if isinstance(dtype, str) else str(np.dtype(dtype)))

    def synchronize(self, value):
        import jax

        jax.block_until_ready(value)


@functools.lru_cache(maxsize=256)
def _compiled(implementation: str, is_causal: bool, scale, mask_kind: str | None, gradients: bool,
              window=None, lengths=(False, False)):
    """A jitted canonical-layout sdpa (or its vjp) for one set of static options; cached.

    window: JAX's local_window_size (left, right) or None; lengths: whether query_seq_lengths /
    key_value_seq_lengths are passed (as the traced arguments ql, kl)."""
    import jax

    def forward(q, k, v, m, ql, kl):
        # JAX's layout is (B, T, N, H): canonical (B, H, L, E) is transposed in and out.
        q, k, v = (x.transpose(0, 2, 1, 3) for x in (q, k, v))
        # canonical bool mask True = takes part, as JAX's `mask`; a float mask is JAX's additive `bias`.
        kw = {"mask": m} if mask_kind == "bool" else {"bias": m} if mask_kind == "float" else {}
        if window is not None:
            kw["local_window_size"] = window
        if lengths[0]:
            kw["query_seq_lengths"] = ql
        if lengths[1]:
            kw["key_value_seq_lengths"] = kl
        out = jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=is_causal,
                                           implementation=implementation, **kw)
        return out.transpose(0, 2, 1, 3)

    if not gradients:
        return jax.jit(forward)

    def backward(q, k, v, m, ql, kl, g):
        _, pullback = jax.vjp(lambda q, k, v: forward(q, k, v, m, ql, kl), q, k, v)
        return pullback(g)

    return jax.jit(backward)


def _lengths(x):
    """A (B,) length array as the int32 JAX's _check_shape_and_dtype demands (None stays None)."""
    import jax.numpy as jnp

    return None if x is None else jnp.asarray(x).astype(jnp.int32)


def local_window_size(window, causal_alignment, L, S):
    """The spec's window (left, right) as JAX's local_window_size: the same numbers, index based
    (key j visible to query i iff i - left <= j <= i + right), so only where p_i = i; a None (unbounded)
    side becomes max(L, S), which no |j - i| reaches."""
    if window is None:
        return None
    require(causal_alignment == "top_left" or L == S,
            "jax.nn.dot_product_attention's local_window_size is index based (top-left); it has no "
            "bottom-right alignment")
    unbounded = max(L, S)
    return tuple(unbounded if side is None else int(side) for side in window)


class JaxSdpaAdapter(JaxArrays, Adapter):
    implementation = "xla"
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp"), dtypes=DTYPE_NAMES,
        causal_alignments=("top_left",),       # is_causal is tril(ones(T, S)); no bottom-right option
        value_dim_differs=False,               # "value shape should be [B, S, K, H]" (same as key)
        gradients=True,
        # local_window_size, query_seq_lengths, key_value_seq_lengths; no softcap, sinks, ALiBi or
        # decode offset in JAX's API (a bias computed here would test attnconf, not JAX).
        sdpa_options=("window", "key_lengths", "query_lengths"),
        # fully_masked: JAX's documentation promises no policy, so the canonical claim stays; the
        # suite's profile reports what JAX really does.
    )

    def _options(self, query, key, value, attn_mask, is_causal, causal_alignment, scale):
        require(value.shape[-1] == query.shape[-1],
                "jax.nn.dot_product_attention needs value's head dim equal to key's (Ev == E)")
        L, S = query.shape[-2], key.shape[-2]
        require(not is_causal or causal_alignment == "top_left" or L == S,
                "jax.nn.dot_product_attention's is_causal is top-left only (no bottom-right option)")
        # H != Hkv: JAX groups query heads h // (H / Hkv) by itself; it has no enable_gqa switch.
        mask_kind = None if attn_mask is None else ("bool" if attn_mask.dtype == bool else "float")
        return bool(is_causal), None if scale is None else float(scale), mask_kind

    def _run(self, gradients, query, key, value, attn_mask, is_causal, causal_alignment, scale,
             window, query_lengths, key_lengths, *rest):
        options = self._options(query, key, value, attn_mask, is_causal, causal_alignment, scale)
        L, S = query.shape[-2], key.shape[-2]
        # bottom-right with ragged lengths shifts each batch by K_b - L_b: JAX has no such offset.
        require(causal_alignment == "top_left" or window is None and not is_causal or
                query_lengths is None and key_lengths is None,
                "jax.nn.dot_product_attention's masks are index based (top-left); it has no "
                "bottom-right alignment for ragged lengths")
        lws = local_window_size(window, causal_alignment, L, S)
        with x64(_name(query)):
            ql, kl = _lengths(query_lengths), _lengths(key_lengths)
            fn = _compiled(self.implementation, *options, gradients, lws, (ql is not None, kl is not None))
            return fn(query, key, value, attn_mask, ql, kl, *rest)

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, window=None,
             query_lengths=None, key_lengths=None):
        return self._run(False, query, key, value, attn_mask, is_causal, causal_alignment, scale,
                         window, query_lengths, key_lengths)

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, window=None,
                 query_lengths=None, key_lengths=None):
        return tuple(self._run(True, query, key, value, attn_mask, is_causal, causal_alignment, scale,
                               window, query_lengths, key_lengths, grad_output))


class JaxXlaAdapter(JaxSdpaAdapter):
    name = "jax-xla"
    implementation = "xla"
    description = 'jax.nn.dot_product_attention(implementation="xla"), jitted'


class JaxCudnnAdapter(JaxSdpaAdapter):
    name = "jax-cudnn"
    implementation = "cudnn"
    device = "gpu"
    description = 'jax.nn.dot_product_attention(implementation="cudnn"), jitted (GPU only)'
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp"), dtypes=("float16", "bfloat16"),  # cuDNN fused attention: half types
        causal_alignments=("top_left",), value_dim_differs=False, gradients=True,
    )

    def cpu_status(self):
        return False, "jax-cudnn needs a GPU (implementation='cudnn' has no CPU kernel)"

    def device_status(self):
        if self.device == "cpu":
            return self.cpu_status()
        return super().device_status()


def jax_sinusoidal(num_positions, dim, *, base=10000.0, offset=0, layout="interleaved",
                   frequencies="vaswani", dtype="float32"):
    """attnconf's own table in jax.numpy, computed the way typical code does: angles p·ω in float32
    (float64 for a float64 table), lower dtypes rounded once at the end."""
    import jax.numpy as jnp

    compute = jnp.float64 if dtype == "float64" else jnp.float32
    pos = (jnp.arange(num_positions, dtype=jnp.int32 if offset + num_positions < 2**31 else jnp.int64)
           + offset).astype(compute)
    if frequencies == "vaswani":
        omega = jnp.exp(jnp.arange(0, dim, 2, dtype=compute) * (-math.log(base) / dim))
        n_sin, n_cos = (dim + 1) // 2, dim // 2
    else:  # t2t
        n = dim // 2
        omega = jnp.exp(jnp.arange(n, dtype=compute) * (-math.log(base) / max(n - 1, 1)))
        n_sin = n_cos = n
    angles = pos[:, None] * omega[None, :]
    sin, cos = jnp.sin(angles)[:, :n_sin], jnp.cos(angles)[:, :n_cos]
    if layout == "interleaved":
        table = jnp.zeros((num_positions, n_sin + n_cos), compute)
        table = table.at[:, 0::2].set(sin).at[:, 1::2].set(cos)
    elif layout == "concat":
        table = jnp.concatenate([sin, cos], axis=1)
    else:
        table = jnp.concatenate([cos, sin], axis=1)
    if table.shape[1] < dim:  # t2t with odd d: the zero column stays last
        table = jnp.concatenate([table, jnp.zeros((num_positions, dim - table.shape[1]), compute)], axis=1)
    return table.astype(numpy_dtype(dtype))


class JaxSinusoidalAdapter(JaxArrays, Adapter):
    name = "jax-sinusoidal"
    description = ("attnconf's OWN sinusoidal encoding written in jax.numpy from the spec (not a JAX "
                   "API): angles in float32")
    capabilities = Capabilities(
        operations=("sinusoidal_encoding",), dtypes=DTYPE_NAMES,
        encoding_layouts=("interleaved", "concat", "cos_first"), encoding_frequencies=("vaswani", "t2t"),
    )

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        import jax

        with x64(dtype), jax.default_device(self._device()):
            return jax_sinusoidal(num_positions, dim, base=base, offset=offset, layout=layout,
                                  frequencies=frequencies, dtype=dtype)


ADAPTERS = (JaxXlaAdapter, JaxCudnnAdapter, JaxSinusoidalAdapter)
