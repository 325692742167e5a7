"""TensorFlow adapters: `keras.ops.dot_product_attention` on the TensorFlow backend,
`keras.layers.MultiHeadAttention` with the canonical weights loaded, and attnconf's own
sinusoidal encoding written in TensorFlow ops.

Keras's layout is (B, T, N, H) — heads on axis 2 — so tensors are transposed at the border.
Nothing of Keras's behaviour is repaired. tensorflow/keras are imported inside functions only.

Choosing the Keras backend without disturbing the user: Keras fixes its backend when first
imported (KERAS_BACKEND, else ~/.keras/keras.json). If keras is not imported yet we set
KERAS_BACKEND=tensorflow only around our own import and restore the variable afterwards. If the
user already imported keras with another backend we do not re-import it: the functional op is
then called from Keras's TensorFlow backend module directly (`keras.src.backend.tensorflow.nn`),
and the layer adapter, which cannot run on a backend other than the active one, is unavailable.
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, require, shape_of
from attnconf.dtypes import DTYPE_NAMES, numpy_dtype
from attnconf.errors import SetupError


# Start-up lines TensorFlow's C++ runtime writes straight to file descriptor 2 whatever
# TF_CPP_MIN_LOG_LEVEL says (TF 2.21): noise in a conformance run's output, so they are dropped;
# any other line it writes while importing is passed on unchanged.
_TF_STARTUP_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
                     "This TensorFlow binary is optimized", "rebuild TensorFlow with the appropriate")


def import_tensorflow():
    """tensorflow, imported with its known start-up noise on stderr filtered out."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not any(noise in line for noise in _TF_STARTUP_NOISE):
                    sys.stderr.write(line)
    return tensorflow


def import_keras_tensorflow():
    """keras, imported with the TensorFlow backend if this is its first import (see module doc)."""
    return import_keras("tensorflow")


def import_keras(backend: str):
    """keras, imported with `backend` if this is its first import (KERAS_BACKEND restored after;
    keras fixes its backend at first import, so a later call gets whatever was chosen first)."""
    if backend == "tensorflow":
        import_tensorflow()
    if "keras" not in sys.modules:
        previous = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = backend
        try:
            import keras  # noqa: F401
        finally:
            if previous is None:
                del os.environ["KERAS_BACKEND"]
            else:
                os.environ["KERAS_BACKEND"] = previous
    import keras

    return keras


def keras_backend() -> str:
    return import_keras_tensorflow().backend.backend()


def _dot_product_attention():
    keras = import_keras_tensorflow()
    if keras.backend.backend() == "tensorflow":
        return keras.ops.dot_product_attention
    from keras.src.backend.tensorflow import nn as tf_nn  # keras runs another backend for the user

    return tf_nn.dot_product_attention


def select_tf_device(requested: str, gpu_count: int) -> str:
    """The TensorFlow device string for an attnconf device name ("cuda" is accepted as "gpu")."""
    if requested == "cpu":
        return "/CPU:0"
    if requested in ("cuda", "gpu"):
        if gpu_count < 1:
            raise SetupError(f"device {requested!r} should be a GPU TensorFlow can see, but "
                             "tf.config.list_physical_devices('GPU') is empty")
        return "/GPU:0"
    raise SetupError(f"device should be one of 'cpu', 'cuda', 'gpu', but got {requested!r}")


def native_dtype(name: str):
    """The tf.DType a tensorflow plug-in function's dtype= receives."""
    import tensorflow as tf

    return tf.as_dtype(name)


def vjp(fn, primals, cotangent):
    """Gradients of <fn(*primals), cotangent> through tf.GradientTape."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        for p in primals:
            tape.watch(p)
        out = fn(*primals)
    return tuple(tape.gradient(out, list(primals), output_gradients=cotangent))


class TfArrays:
    """NumPy <-> tf.Tensor conversion, shared by every TensorFlow adapter and TF plug-in functions."""

    framework = "tensorflow"
    modules = ("tensorflow",)

    @classmethod
    def availability(cls):
        try:
            import_tensorflow()
        except Exception as exc:
            return False, f"tensorflow is not importable: {type(exc).__name__}: {exc}"
        return True, ""

    def device_status(self):
        import tensorflow as tf

        try:
            select_tf_device(self.device, len(tf.config.list_physical_devices("GPU")))
        except SetupError as exc:
            return False, str(exc)
        return True, ""

    def _device(self):
        import tensorflow as tf

        return tf.device(select_tf_device(self.device, len(tf.config.list_physical_devices("GPU"))))

    def from_numpy(self, array, dtype):
        import tensorflow as tf

        a = np.asarray(array).astype(numpy_dtype(dtype))  # rounded once, in NumPy/ml_dtypes
        with self._device():
            if dtype == "bfloat16":  # bfloat16 -> float32 -> bfloat16 is exact both ways
                return tf.cast(tf.constant(a.astype(np.float32)), tf.bfloat16)
            return tf.constant(a)

    def from_numpy_bool(self, mask):
        import tensorflow as tf

        with self._device():
            return tf.constant(np.asarray(mask, dtype=bool))

    def index_from_numpy(self, arr):
        import tensorflow as tf

        # int32: keras' integer default; keras-hub's RotaryEmbedding casts positions to float32 anyway.
        with self._device():
            return tf.constant(np.asarray(arr).astype(np.int32))

    def to_numpy(self, value):
        import tensorflow as tf

        if value.dtype == tf.bfloat16:
            return tf.cast(value, tf.float32).numpy().astype(numpy_dtype("bfloat16"))
        return value.numpy()


class KerasTfAdapter(TfArrays, Adapter):
    modules = ("tensorflow", "keras")
    name = "keras-tf"
    description = "keras.ops.dot_product_attention on the TensorFlow backend"
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp"), dtypes=DTYPE_NAMES,
        causal_alignments=("top_left",),  # Keras's is_causal is tril(ones(T, S)); no bottom-right option
        gradients=True,
    )

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        if not available:
            return available, reason
        try:
            import_keras_tensorflow()
        except Exception as exc:
            return False, f"keras is not importable: {type(exc).__name__}: {exc}"
        return True, ""

    def _call(self, query, key, value, attn_mask, is_causal, causal_alignment, scale):
        L, S = query.shape[-2], key.shape[-2]
        require(not is_causal or causal_alignment == "top_left" or L == S,
                "keras.ops.dot_product_attention's is_causal is top-left only (no bottom-right option)")
        # Keras's layout is (B, T, N, H): canonical (B, H, L, E) is transposed in and out.
        q, k, v = (_swap_heads(x) for x in (query, key, value))
        # canonical bool mask True = takes part, as Keras's `mask`; a float mask is its additive `bias`.
        kw = {} if attn_mask is None else {"mask": attn_mask} if attn_mask.dtype.is_bool else {"bias": attn_mask}
        # H != Hkv: Keras groups query heads h // (H / Hkv) by itself; it has no enable_gqa switch.
        with self._device():
            out = _dot_product_attention()(q, k, v, scale=scale, is_causal=bool(is_causal), **kw)
        return _swap_heads(out)

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False):
        return self._call(query, key, value, attn_mask, is_causal, causal_alignment, scale)

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False):
        return vjp(lambda q, k, v: self._call(q, k, v, attn_mask, is_causal, causal_alignment, scale),
                   (query, key, value), grad_output)


def _swap_heads(x):
    import tensorflow as tf

    return tf.transpose(x, (0, 2, 1, 3))


class KerasTfMultiHeadAttentionAdapter(KerasTfAdapter):
    name = "keras-tf-mha"
    description = "keras.layers.MultiHeadAttention (TensorFlow backend) with the canonical weights loaded"
    capabilities = Capabilities(
        operations=("multi_head_attention",), dtypes=DTYPE_NAMES,
        mask_kinds=("bool",),  # attention_mask is a 0/1 mask (B, T, S); no additive float mask
        causal_alignments=("top_left",), gqa=False, mha_kv_heads=False,
    )

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        if available and keras_backend() != "tensorflow":
            return False, (f"keras was imported with the {keras_backend()!r} backend before attnconf; "
                           "its layers cannot run on TensorFlow in this process")
        return available, reason

    def multi_head_attention(self, query_input, key_value_input, weights, *, num_heads,
                             num_kv_heads=None, attn_mask=None, is_causal=False):
        import tensorflow as tf

        keras = import_keras_tensorflow()
        B, L, D = shape_of(query_input)
        S, Dkv = shape_of(key_value_input)[1:]
        H = num_heads
        require(num_kv_heads in (None, H), "keras.layers.MultiHeadAttention has no grouped key/value heads")
        wq, wk, wv, wo = (weights[n] for n in ("wq", "wk", "wv", "wo"))
        E, Ev = wq.shape[1] // H, wv.shape[1] // H
        dtype = query_input.dtype.name
        has_bias = any(weights.get(n) is not None for n in ("bq", "bk", "bv", "bo"))
        mask = self._mask(attn_mask, B, L, S)
        with self._device():
            layer = keras.layers.MultiHeadAttention(num_heads=H, key_dim=E, value_dim=Ev,
                                                    use_bias=has_bias, dtype=dtype)
            layer.build(tuple(query_input.shape), tuple(key_value_input.shape))
            # Keras kernels are per head: (D, N, H) for query/key/value and (N, H, D) for the output;
            # the canonical (D, H·E) splits its columns head-major, so a reshape is the translation.
            values = {"query/kernel": tf.reshape(wq, (D, H, E)), "key/kernel": tf.reshape(wk, (Dkv, H, E)),
                      "value/kernel": tf.reshape(wv, (Dkv, H, Ev)),
                      "attention_output/kernel": tf.reshape(wo, (H, Ev, D))}
            for n, part, shape in (("bq", "query", (H, E)), ("bk", "key", (H, E)),
                                   ("bv", "value", (H, Ev)), ("bo", "attention_output", (D,))):
                b = weights.get(n)  # Keras has one use_bias switch: an absent canonical bias is zero
                values[f"{part}/bias"] = tf.zeros(shape, query_input.dtype) if b is None else tf.reshape(b, shape)
            for variable in layer.weights:
                suffix = "/".join(variable.path.split("/")[-2:])
                variable.assign(values[suffix])
            return layer(query_input, key_value_input, key_value_input, attention_mask=mask,
                         use_causal_mask=bool(is_causal))  # use_causal_mask is top-left (tril of (T, S))

    @staticmethod
    def _mask(attn_mask, B, L, S):
        import tensorflow as tf

        if attn_mask is None:
            return None
        require(attn_mask.dtype.is_bool, "keras.layers.MultiHeadAttention takes a 0/1 attention_mask, "
                                         "not an additive float mask")
        m = tf.reshape(attn_mask, (1,) * (4 - len(attn_mask.shape)) + tuple(attn_mask.shape))
        require(m.shape[1] == 1, "keras.layers.MultiHeadAttention's attention_mask is (B, T, S): "
                                 "no per-head mask")
        # Keras's attention_mask is (B, T, S) with 1 = attend: the canonical head axis is dropped.
        return tf.broadcast_to(m[:, 0], (B, L, S))


def tf_sinusoidal(num_positions, dim, *, base=10000.0, offset=0, layout="interleaved",
                  frequencies="vaswani", dtype="float32"):
    """attnconf's own table in TensorFlow ops, computed the way typical code does (TF tutorial):
    angles p·ω in float32 (float64 for a float64 table), lower dtypes rounded once at the end."""
    import tensorflow as tf

    compute = tf.float64 if dtype == "float64" else tf.float32
    pos = tf.cast(tf.range(num_positions, dtype=tf.int64) + offset, compute)
    if frequencies == "vaswani":
        omega = tf.exp(tf.range(0, dim, 2, dtype=compute) * (-math.log(base) / dim))
        n_sin, n_cos = (dim + 1) // 2, dim // 2
    else:  # t2t
        n = dim // 2
        omega = tf.exp(tf.range(n, dtype=compute) * (-math.log(base) / max(n - 1, 1)))
        n_sin = n_cos = n
    angles = pos[:, None] * omega[None, :]
    sin, cos = tf.sin(angles)[:, :n_sin], tf.cos(angles)[:, :n_cos]
    if layout == "interleaved":
        pairs = tf.stack([sin[:, :n_cos], cos], axis=2)
        table = tf.concat([tf.reshape(pairs, (num_positions, 2 * n_cos)), sin[:, n_cos:]], axis=1)
    elif layout == "concat":
        table = tf.concat([sin, cos], axis=1)
    else:
        table = tf.concat([cos, sin], axis=1)
    if table.shape[1] < dim:  # t2t with odd d: the zero column stays last
        table = tf.concat([table, tf.zeros((num_positions, dim - table.shape[1]), compute)], axis=1)
    return tf.cast(table, tf.as_dtype(dtype))


class TfSinusoidalAdapter(TfArrays, Adapter):
    name = "tf-sinusoidal"
    description = ("attnconf's OWN sinusoidal encoding written in TensorFlow ops from the spec (not a "
                   "TensorFlow API): angles in float32")
    capabilities = Capabilities(
        operations=("sinusoidal_encoding",), dtypes=DTYPE_NAMES,
        encoding_layouts=("interleaved", "concat", "cos_first"), encoding_frequencies=("vaswani", "t2t"),
    )

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        with self._device():
            return tf_sinusoidal(num_positions, dim, base=base, offset=offset, layout=layout,
                                 frequencies=frequencies, dtype=dtype)


ADAPTERS = (KerasTfAdapter, KerasTfMultiHeadAttentionAdapter, TfSinusoidalAdapter)
