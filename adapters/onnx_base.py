"""What the onnxruntime adapters share (onnx-attention, onnx-gqa, onnx-rope, ort-rope-contrib):
NumPy arrays in and out, the modules they run on, their availability, and the two element types
onnxruntime's CPU kernels take. Imports neither onnx nor onnxruntime at module level."""
from __future__ import annotations

from attnconf.adapters.base import require
from attnconf.adapters.numpy_reference import NumpyArrays

ELEM = {"float32": 1, "float16": 10}   # onnx.TensorProto.FLOAT, FLOAT16: the CPU kernels' dtypes


class OnnxRuntime(NumpyArrays):
    framework = "onnxruntime"
    modules = ("onnx", "onnxruntime")   # availability and provenance from package metadata

    @classmethod
    def availability(cls):
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except Exception as exc:
            return False, (f"onnx / onnxruntime are not importable ({type(exc).__name__}: {exc}); "
                           "install them with `pip install -e .[onnx]`")
        return True, ""

    def from_numpy(self, array, dtype):
        require(dtype in ELEM, f"{self.name} runs onnxruntime's kernel for float32 and float16 only")
        return super().from_numpy(array, dtype)
