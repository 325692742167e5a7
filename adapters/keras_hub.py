"""`keras-hub-sine`: keras_hub.layers.SinePositionEncoding (TensorFlow backend), a real third-party
encoding. Available only if keras_hub imports; attnconf does not depend on keras-hub because
`pip install keras-hub` pulls tensorflow-text, which pulls a second TensorFlow (`tensorflow`
beside `tensorflow-cpu`; measured, see docs/plugins.md). keras_hub is imported inside methods only.
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.keras_tf import TfArrays, import_keras_tensorflow, keras_backend
from attnconf.dtypes import DTYPE_NAMES


class KerasHubSineAdapter(TfArrays, Adapter):
    modules = ("tensorflow", "keras", "keras_hub")
    name = "keras-hub-sine"
    description = "keras_hub.layers.SinePositionEncoding (paper layout, max_wavelength = base, start_index = offset)"
    capabilities = Capabilities(
        operations=("sinusoidal_encoding",), dtypes=DTYPE_NAMES,
        encoding_layouts=("interleaved",), encoding_frequencies=("vaswani",),
    )

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        if not available:
            return available, reason
        try:
            import_keras_tensorflow()
            import keras_hub  # noqa: F401
        except Exception as exc:
            return False, (f"keras_hub is not importable ({type(exc).__name__}: {exc}); install it with "
                           "`pip install --no-deps keras-hub` to avoid a second TensorFlow (docs/plugins.md)")
        if keras_backend() != "tensorflow":
            return False, f"keras was imported with the {keras_backend()!r} backend before attnconf"
        return True, ""

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        import keras_hub
        import tensorflow as tf

        require(layout == "interleaved" and frequencies == "vaswani",
                "SinePositionEncoding computes the paper's interleaved table only")
        with self._device():
            layer = keras_hub.layers.SinePositionEncoding(max_wavelength=float(base), dtype=dtype)
            # the layer reads only the shape (…, T, d) of its input and computes in its own dtype
            inputs = tf.zeros((1, num_positions, dim), tf.as_dtype(dtype))
            return layer(inputs, start_index=offset)[0]
