"""An installable third-party adapter, found by attnconf through the `attnconf.adapters` entry point.

After `pip install ./entrypoint_pkg`, `attnconf adapters` lists `example-plugin` and
`attnconf run --adapter example-plugin` checks it.
"""
import numpy as np

from attnconf.adapters.base import Adapter, Capabilities
from attnconf.dtypes import numpy_dtype


class ExamplePluginAdapter(Adapter):
    name = "example-plugin"
    framework = "numpy"
    description = "example: attnconf's NumPy reference delivered by an installed plug-in package"
    capabilities = Capabilities(operations=("sinusoidal_encoding",), dtypes=("float64", "float32"),
                                encoding_layouts=("interleaved", "concat"))

    def version(self):
        return "0.1.0"

    def from_numpy(self, array, dtype):
        return np.asarray(array).astype(numpy_dtype(dtype))

    def from_numpy_bool(self, mask):
        return np.asarray(mask, dtype=bool)

    def to_numpy(self, value):
        return np.asarray(value)

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        from attnconf.reference import sinusoidal_encoding

        table = sinusoidal_encoding(num_positions, dim, base=base, offset=offset, layout=layout,
                                    frequencies=frequencies)
        return table.astype(numpy_dtype(dtype))
