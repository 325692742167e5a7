"""`onnx-attention`: the ONNX `Attention` operator (opset 24) run by onnxruntime's CPU kernel.

The model is one Attention node built in memory with `onnx.helper` (no file, nothing downloaded),
one inference session per set of static attributes and inputs present, cached. onnx and
onnxruntime are imported inside functions only; arrays cross as NumPy arrays.

Which kernel runs (measured on onnxruntime 1.32.0, onnx 1.23.2, by saving the session's optimised
graph): for float32 and float16 at opsets 23 and 24 the graph keeps the single Attention node
(onnxruntime's own CPU kernel); float64 (and opset 25, the one with left/right window sizes) is
expanded into ONNX's function body (MatMul, Softmax, … from onnx's own definition), and bfloat16
has no kernel at all ("Could not find an implementation for Expand(13)"). So this adapter claims
float32 and float16 at opset 24 only: what it tests is onnxruntime's kernel, not ONNX's
decomposition; the window (opset 25) is not claimed for the same reason.

Border translations (none repairs onnxruntime's numerics):
- canonical (B, H, L, E) is ONNX's 4-D layout; GQA is native (Hkv divides H), Ev may differ;
- bool attn_mask True = takes part, as ONNX's; a float one is added, as ONNX's;
- softcap: the `softcap` attribute as given (None: no attribute; ONNX reads 0 as off, which the
  profile's opt_softcap_zero reports, the spec rejecting 0);
- query_offset P (one per call: ONNX's internal cache has one past length): the first P keys and
  values are `past_key` / `past_value`, the rest `K` / `V`; the causal frontier is then j <= P + i;
- bottom_right without key_lengths: the same cache split at P = S − L (ONNX's decode step);
- key_lengths: `nonpad_kv_seqlen` (int64, opset 24), whose causal frontier is j <= i + nonpad − L
  (ONNX's external cache): that is the spec's bottom_right with K_b = key_lengths[b], so causal with
  key_lengths is claimed for bottom_right only (and top-left where every length is L: offset 0);
- is_causal without either is ONNX's top-left j <= i (offset 0): top_left as given, while
  bottom_right at L != S is the cache split above;
- a mask whose key axis is shorter than the keys is padded by ONNX with False / −∞ (its reference,
  onnx/reference/ops/op_attention.py): never sent, the canonical mask always spans all S keys.
"""
from __future__ import annotations

import functools

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.onnx_base import ELEM, OnnxRuntime

OPSET = 24
_ELEM = ELEM


@functools.lru_cache(maxsize=128)
def _session(dtype: str, mask: str | None, cache: bool, nonpad: bool, is_causal: bool, scale,
             softcap):
    """An onnxruntime session of one Attention node; inputs named as the node's slots."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = _ELEM[dtype]
    names = ["Q", "K", "V", "attn_mask" if mask else "", "past_key" if cache else "",
             "past_value" if cache else "", "nonpad_kv_seqlen" if nonpad else ""]
    while names[-1] == "":
        names.pop()
    types = {"attn_mask": TensorProto.BOOL if mask == "bool" else elem,
             "nonpad_kv_seqlen": TensorProto.INT64}
    inputs = [helper.make_tensor_value_info(n, types.get(n, elem), None) for n in names if n]
    attrs = {"is_causal": int(is_causal)}
    if scale is not None:
        attrs["scale"] = float(scale)
    if softcap is not None:
        attrs["softcap"] = float(softcap)
    # onnxruntime's kernel refuses past_key without the present_key output ("The implementation does
    # not support past_key provided and present_key being null"), so a cached call asks for both.
    outputs = ["Y", "present_key", "present_value"] if cache else ["Y"]
    node = helper.make_node("Attention", names, outputs, **attrs)
    graph = helper.make_graph([node], "attnconf_attention", inputs,
                              [helper.make_tensor_value_info(n, elem, None) for n in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10  # onnxruntime 1.2x reads IR 10; onnx 1.23 would write 11
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # a kernel's refusal is raised to the caller; its copy on stderr (the default logger's) is noise
    options.log_severity_level = 4  # fatal only
    ort.set_default_logger_severity(4)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


class OnnxAttentionAdapter(OnnxRuntime, Adapter):
    name = "onnx-attention"
    description = f"ONNX Attention (opset {OPSET}) through onnxruntime's CPU kernel"
    capabilities = Capabilities(
        operations=("sdpa",), dtypes=tuple(_ELEM),
        causal_alignments=("top_left", "bottom_right"),
        sdpa_options=("softcap", "query_offset", "key_lengths"),
    )

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, softcap=None,
             query_offset=None, key_lengths=None):
        dtype = str(query.dtype)
        require(dtype in _ELEM, f"{self.name} runs onnxruntime's kernel for float32 and float16 only")
        L, S = query.shape[-2], key.shape[-2]
        past = None
        if query_offset is not None:
            offsets = np.unique(query_offset)
            require(offsets.size == 1, "ONNX Attention's cache has one past length per call, not one per sequence")
            past = int(offsets[0])
        elif causal_alignment == "bottom_right" and key_lengths is None and L != S and (is_causal):
            past = S - L  # ONNX's decode step: the cache holds the S − L earlier keys
        if key_lengths is not None:
            require(past is None, "ONNX Attention takes nonpad_kv_seqlen only without past_key/past_value")
            # its frontier j <= i + nonpad − L is top-left's j <= i only where every nonpad equals L
            # (onnx/reference/ops/op_attention.py), not whenever L == S
            top_left_too = bool(np.all(np.asarray(key_lengths) == L))
            require(not is_causal or causal_alignment == "bottom_right" or top_left_too,
                    "ONNX Attention's causal frontier with nonpad_kv_seqlen is j <= i + nonpad - L "
                    "(bottom-right), not top-left")
        mask = None if attn_mask is None else ("bool" if attn_mask.dtype == np.bool_ else "float")
        feeds = {"Q": query}
        if past is None:
            feeds.update(K=key, V=value)
        else:
            require(0 <= past <= S, f"query_offset should be within 0..S = {S}, but got {past}")
            feeds.update(past_key=key[:, :, :past], past_value=value[:, :, :past],
                         K=key[:, :, past:], V=value[:, :, past:])
        if attn_mask is not None:
            feeds["attn_mask"] = attn_mask
        if key_lengths is not None:
            feeds["nonpad_kv_seqlen"] = np.asarray(key_lengths, dtype=np.int64)
        session = _session(dtype, mask, past is not None, key_lengths is not None, bool(is_causal),
                           None if scale is None else float(scale),
                           None if softcap is None else float(softcap))
        feeds = {k: np.ascontiguousarray(v) for k, v in feeds.items()}
        return session.run(["Y"], feeds)[0]


ADAPTERS = (OnnxAttentionAdapter,)
