"""`keras-hub-rope` (TensorFlow backend) and `keras-hub-rope-jax` (JAX backend):
keras_hub.layers.RotaryEmbedding, layout "half" (its rotation splits the feature axis in halves).

keras-hub is installed without its declared dependencies (a second TensorFlow otherwise; see
keras_hub.py and docs/plugins.md). Keras fixes its backend at first import, so each row needs a
process whose first keras import picks its backend: attnconf runs each adapter in a worker process of
its own, where we set KERAS_BACKEND only around our own first import (as keras_tf.py does).

Border translations (none repairs the layer's numerics):
- layout: the layer takes sequence_axis/feature_axis, so the canonical (B, H, T, E) goes in as is
  (sequence_axis=2) instead of being transposed to keras-hub's usual (B, T, H, E);
- partial rotary (r < E): the layer rotates its whole feature axis, so the first r channels go in and
  the rest pass through, as keras-hub's own partial-rotary models do (GPT-NeoX `rotary_percentage`);
- scaling: `linear` → scaling_factor; `dynamic` → rope_type "dynamic" (keras-hub's rule: base·f^(r/(r−2))
  at every length, not HF's length-dependent NTK — passed on unrepaired, pinned in
  tests/test_adapters_rope_findings.py); `yarn` → beta_fast, beta_slow, original_max_position_embeddings,
  truncate; the layer always uses 0.1·ln f + 1, so a given attention_factor is unsupported;
  `llama3` is not implemented by the layer.
"""
from __future__ import annotations


from attnconf.adapters.base import Adapter, Capabilities, require, shape_of
from attnconf.adapters.jax_nn import JaxArrays
from attnconf.adapters.keras_hub_base import KerasHubLayer
from attnconf.adapters.keras_tf import TfArrays, import_keras
from attnconf.dtypes import DTYPE_NAMES
from attnconf.errors import SetupError

_YARN = {"beta_fast", "beta_slow", "original_max_position_embeddings", "truncate"}


def layer_options(base, scaling) -> dict:
    """RotaryEmbedding keyword arguments for attnconf's base and scaling dict."""
    options = {"max_wavelength": float(base)}
    if not scaling:
        return options
    scaling = dict(scaling)
    rule = scaling.get("rope_type")
    require(rule in ("linear", "dynamic", "yarn"),
            f"keras-hub RotaryEmbedding implements rope_type linear, dynamic, yarn, not {rule!r}")
    allowed = {"rope_type", "factor"} | (_YARN | {"attention_factor"} if rule == "yarn" else
                                          {"original_max_position_embeddings"})
    unknown = set(scaling) - allowed
    require(not unknown, f"keras-hub RotaryEmbedding has no option for {sorted(unknown)} under {rule}")
    options.update(rope_type=rule, scaling_factor=float(scaling["factor"]))
    if rule == "yarn":
        require(scaling.get("attention_factor") is None,
                "keras-hub RotaryEmbedding's YaRN always uses attention factor 0.1·ln f + 1")
        options.update({k: scaling[k] for k in _YARN if scaling.get(k) is not None})
    return options


class _KerasHubRope(KerasHubLayer):
    """The layer call, shared by both rows (a mixin before the conversion mixin and Adapter)."""

    capabilities = Capabilities(operations=("rotary_embedding",), dtypes=DTYPE_NAMES,
                                rope_layouts=("half",), rope_scaling=("linear", "dynamic", "yarn"))

    def _layer(self, base, scaling, dtype):
        keras = import_keras(self.backend)
        if keras.backend.backend() != self.backend:
            raise SetupError(f"{self.name} needs keras on the {self.backend} backend, but this process imported "
                             f"it with {keras.backend.backend()!r} first (run it in its own worker process)")
        import keras_hub

        return keras_hub.layers.RotaryEmbedding(sequence_axis=2, feature_axis=-1, dtype=dtype,
                                                **layer_options(base, scaling))

    def rotary_embedding(self, x, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                         layout="interleaved"):
        require(layout == "half", "keras-hub RotaryEmbedding rotates half-split pairs only")
        e = shape_of(x)[-1]
        r = e if rotary_dim is None else int(rotary_dim)
        dtype = x.dtype.name
        with self._context(dtype):
            layer = self._layer(base, scaling, dtype)
            rotated = layer(x[..., :r], positions=positions)
            if r == e:
                return rotated
            return import_keras(self.backend).ops.concatenate([rotated, x[..., r:]], axis=-1)


class KerasHubRopeAdapter(_KerasHubRope, TfArrays, Adapter):
    name = "keras-hub-rope"
    backend = "tensorflow"
    modules = ("tensorflow", "keras", "keras_hub")
    description = "keras_hub.layers.RotaryEmbedding on the TensorFlow backend (layout half; linear, dynamic, yarn)"

    def _context(self, dtype):
        return self._device()


class KerasHubRopeJaxAdapter(_KerasHubRope, JaxArrays, Adapter):
    name = "keras-hub-rope-jax"
    backend = "jax"
    modules = ("jax", "jaxlib", "keras", "keras_hub")
    description = "keras_hub.layers.RotaryEmbedding on the JAX backend (layout half; linear, dynamic, yarn)"

    def _context(self, dtype):
        return self.compute_context(dtype)
