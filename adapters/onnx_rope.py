"""`onnx-rope` and `ort-rope-contrib`: RoPE from given caches (spec rope.cache.*) by onnxruntime's
CPU kernels of the ONNX `RotaryEmbedding` operator (ONNX domain, opset 23) and of its older
`com.microsoft` `RotaryEmbedding` contrib operator (opset 1), each its own adapter.

The model is one RotaryEmbedding node built in memory with `onnx.helper` (no file, nothing
downloaded), one inference session per set of attributes and dtype, cached. onnx and onnxruntime
are imported inside functions only; arrays cross as NumPy arrays.

Which kernel runs (measured on onnxruntime 1.32.0, onnx 1.23.2, by saving the session's optimised
graph): float32 and float16 keep the single RotaryEmbedding node in both domains (onnxruntime's own
CPU kernels); float64 is not a type either schema allows, and bfloat16 has no CPU kernel ("Could
not find an implementation for RotaryEmbedding"). So both claim float32 and float16 only.

Border translations (none repairs onnxruntime's numerics):
- the canonical (B, H, T, E) is the 4-D layout of both operators (ONNX-23: (batch, num_heads,
  sequence, head); the contrib kernel reads a 4-D input the same way);
- inputs in the order of each schema: ONNX (input, cos_cache, sin_cache, position_ids), contrib
  (input, position_ids, cos_cache, sin_cache); position_ids int64 (B, T) in both;
- layout "interleaved" is `interleaved=1`, "half" `interleaved=0`; rotary_dim is
  `rotary_embedding_dim` (None: the attribute left out, r = E); the contrib node also gets
  `num_heads` = H (it needs it with a partial rotary dimension).
"""
from __future__ import annotations

import functools

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.onnx_base import ELEM, OnnxRuntime

_ELEM = ELEM


@functools.lru_cache(maxsize=64)
def _session(domain: str, dtype: str, interleaved: int, rotary_dim, num_heads: int):
    """An onnxruntime session of one RotaryEmbedding node of `domain` ("" or "com.microsoft")."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = _ELEM[dtype]
    order = ["X", "cos_cache", "sin_cache", "position_ids"] if not domain else \
        ["X", "position_ids", "cos_cache", "sin_cache"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64 if n == "position_ids" else elem, None)
              for n in order]
    attrs = {"interleaved": interleaved}
    if rotary_dim is not None:
        attrs["rotary_embedding_dim"] = int(rotary_dim)
    if domain:
        attrs["num_heads"] = int(num_heads)
    node = helper.make_node("RotaryEmbedding", order, ["Y"], domain=domain, **attrs)
    graph = helper.make_graph([node], "attnconf_rope_cache", inputs, [helper.make_tensor_value_info("Y", elem, None)])
    opsets = [helper.make_opsetid("", 23)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 10  # onnxruntime 1.2x reads IR 10; onnx 1.23 would write 11
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # a kernel's refusal is raised to the caller; its stderr copy is noise
    ort.set_default_logger_severity(4)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


class OnnxRopeAdapter(OnnxRuntime, Adapter):
    name = "onnx-rope"
    domain = ""
    description = "ONNX RotaryEmbedding (opset 23) through onnxruntime's CPU kernel"
    capabilities = Capabilities(operations=("rope_cache",), dtypes=tuple(_ELEM), rope_layouts=("half", "interleaved"))

    def rope_cache(self, x, cos_cache, sin_cache, position_ids, *, rotary_dim=None, layout="half"):
        dtype = str(x.dtype)
        require(dtype in _ELEM, f"{self.name} runs onnxruntime's kernel for float32 and float16 only")
        session = _session(self.domain, dtype, int(layout == "interleaved"), rotary_dim, int(x.shape[1]))
        feeds = {"X": x, "cos_cache": cos_cache, "sin_cache": sin_cache,
                 "position_ids": np.ascontiguousarray(position_ids, dtype=np.int64)}
        return session.run(None, feeds)[0]


class OrtRopeContribAdapter(OnnxRopeAdapter):
    name = "ort-rope-contrib"
    domain = "com.microsoft"
    description = "onnxruntime's com.microsoft RotaryEmbedding contrib operator, CPU kernel"


ADAPTERS = (OnnxRopeAdapter, OrtRopeContribAdapter)
