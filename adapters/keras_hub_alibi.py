"""`keras-hub-alibi` (TensorFlow backend) and `keras-hub-alibi-jax` (JAX backend):
keras_hub.layers.AlibiBias, which adds m_h·(j − (S − 1)) to attention scores (B, H, L, S) — for
every query row the bias of the last, bottom-right-aligned row of the paper's causal −m·(i' − j).
Its slopes follow fairseq's get_slopes with alibi_bias_max = max_bias (Python floats, converted to
the layer's dtype).

keras-hub is installed without its declared dependencies (see keras_hub.py, docs/plugins.md). Keras
fixes its backend at first import, so each row needs a process whose first keras import picks its
backend (attnconf runs each adapter in a worker process of its own; see keras_hub_rope.py).

Border translations (none repairs the layer):
- alibi_bias: the layer is given zero scores (1, H, L, S) of the case dtype, so its output is its
  bias (0 + b = b exactly); it has no alignment option and reads only S, so `top_left` is
  unsupported unless L = S; mode `causal` is what its docstring states (Press et al.), returned as
  the layer gives it (the profile names the form), `symmetric` and `row_constant` are unsupported;
- alibi_slopes: the slopes are not public on their own (`_get_slopes` is private), so they are read
  from the layer with S = 2: column j = 0 holds m·(0 − 1) = −m, negated here (exact).
"""
from __future__ import annotations


from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.jax_nn import JaxArrays
from attnconf.adapters.keras_hub_base import KerasHubLayer
from attnconf.adapters.keras_tf import TfArrays, import_keras
from attnconf.dtypes import DTYPE_NAMES
from attnconf.errors import SetupError


class _KerasHubAlibi(KerasHubLayer):
    """The layer call, shared by both rows (a mixin before the conversion mixin and Adapter)."""

    capabilities = Capabilities(operations=("alibi_slopes", "alibi_bias"), dtypes=DTYPE_NAMES,
                                alibi_modes=("causal",), alibi_alignments=("bottom_right",))

    def _bias(self, num_heads, query_length, key_length, max_bias, dtype):
        """The layer's output on zero scores (1, H, L, S): its bias, (H, L, S)."""
        keras = import_keras(self.backend)
        if keras.backend.backend() != self.backend:
            raise SetupError(f"{self.name} needs keras on the {self.backend} backend, but this process imported "
                             f"it with {keras.backend.backend()!r} first (run it in its own worker process)")
        import keras_hub

        with self._context(dtype):
            layer = keras_hub.layers.AlibiBias(alibi_bias_max=max_bias, dtype=dtype)
            scores = keras.ops.zeros((1, int(num_heads), int(query_length), int(key_length)), dtype=dtype)
            return layer(scores)[0]

    def alibi_slopes(self, num_heads, *, max_bias=8.0, dtype="float32"):
        return -self._bias(num_heads, 1, 2, max_bias, dtype)[:, 0, 0]

    def alibi_bias(self, num_heads, query_length, key_length, *, max_bias=8.0, mode="causal",
                   alignment="bottom_right", dtype="float32"):
        require(mode == "causal", f"keras-hub AlibiBias has one form (its causal last-row bias), not mode {mode!r}")
        require(alignment == "bottom_right" or int(query_length) == int(key_length),
                "keras-hub AlibiBias reads only the key length (its bias is the bottom-right last row)")
        return self._bias(num_heads, query_length, key_length, max_bias, dtype)


class KerasHubAlibiAdapter(_KerasHubAlibi, TfArrays, Adapter):
    name = "keras-hub-alibi"
    backend = "tensorflow"
    modules = ("tensorflow", "keras", "keras_hub")
    description = "keras_hub.layers.AlibiBias on the TensorFlow backend (bias m·(j − S + 1) on every row)"

    def _context(self, dtype):
        return self._device()


class KerasHubAlibiJaxAdapter(_KerasHubAlibi, JaxArrays, Adapter):
    name = "keras-hub-alibi-jax"
    backend = "jax"
    modules = ("jax", "jaxlib", "keras", "keras_hub")
    description = "keras_hub.layers.AlibiBias on the JAX backend (bias m·(j − S + 1) on every row)"

    def _context(self, dtype):
        return self.compute_context(dtype)
