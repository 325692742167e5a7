"""`onnx-gqa`: onnxruntime's `GroupQueryAttention` (com.microsoft contrib operator, CPU kernel) for
`sdpa_paged`.

GroupQueryAttention keeps a contiguous KV cache, not pages: past_key/past_value (B, Hkv, buffer,
E) shared with present_key/present_value, the new tokens' key/value (B, L, Hkv·E) written at
positions seqlens_k[b] + 1 − L … seqlens_k[b], with `seqlens_k[b]` = total length − 1. So a paged
case maps to it as a cache of one page per sequence with page_size = the capacity: the adapter
lays each sequence's pages out in block-table order (the M·P slots, garbage included, as the
cache buffer would hold them) and passes the last L keys as the new ones — positions K_b − L …
K_b − 1, the queries' own (spec paged.positions). Observed on onnxruntime 1.32 (its source:
onnxruntime/contrib_ops/cpu/bert/gqa_attention_base.h, group_query_attention_helper.h):
- head_size must be a multiple of 8, and batch_size must be 1 when sequence_length > 1 with a past
  cache: the adapter calls it once per sequence (each sequence is independent) and declines E
  not a multiple of 8 (Unsupported);
- `causal` (1 by default) maps is_causal; a sequence with fewer keys than queries (K_b < L, an
  empty cache included) cannot be expressed (seqlens_k ≥ L − 1): Unsupported;
- `local_window_size` w keeps the w keys up to the query (`seq_causal_length − w`), the window
  (w − 1, 0) here (measured: w keys, not w + 1; older releases kept w + 1);
- `softcap` caps before the softmax; `head_sink` (H,) joins the denominator as the spec's sinks
  (`smooth_softmax` = 1 is the sink 0 for every head);
- it has no LSE output: lse is read off its own numbers, `output_qk` in both modes — the capped
  logits (qk_output = 1) and the probabilities (qk_output = 2): lse_i = s_ij − log p_ij at the
  row's largest p_ij, in float64 (no mask or softmax of the adapter's own), returned as float32
  (spec paged.dtype, as sdpa.lse.dtype).
onnx/onnxruntime are imported inside functions only; arrays cross as NumPy arrays.
"""
from __future__ import annotations

import functools

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.onnx_base import ELEM, OnnxRuntime

_ELEM = ELEM


@functools.lru_cache(maxsize=64)
def _session(dtype, heads, kv_heads, causal, scale, softcap, window, sink, qk):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = _ELEM[dtype]
    names = ["query", "key", "value", "past_key", "past_value", "seqlens_k", "total_sequence_length",
             "", "", "", "", "head_sink" if sink else ""]
    while names[-1] == "":
        names.pop()
    types = {"seqlens_k": TensorProto.INT32, "total_sequence_length": TensorProto.INT32}
    inputs = [helper.make_tensor_value_info(n, types.get(n, elem), None) for n in names if n]
    outputs = ["output", "present_key", "present_value", "output_qk"]
    attrs = dict(num_heads=heads, kv_num_heads=kv_heads, qk_output=qk, causal=int(causal))
    if scale is not None:
        attrs["scale"] = float(scale)
    if softcap is not None:
        attrs["softcap"] = float(softcap)
    if window is not None:
        attrs["local_window_size"] = int(window)
    node = helper.make_node("GroupQueryAttention", names, outputs, domain="com.microsoft", **attrs)
    graph = helper.make_graph([node], "attnconf_gqa", inputs,
                              [helper.make_tensor_value_info(n, elem, None) for n in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 10
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    ort.set_default_logger_severity(4)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


class OnnxGqaAdapter(OnnxRuntime, Adapter):
    name = "onnx-gqa"
    description = "onnxruntime com.microsoft GroupQueryAttention (CPU kernel): a contiguous cache per sequence"
    capabilities = Capabilities(
        operations=("sdpa_paged",), dtypes=tuple(_ELEM), causal_alignments=("bottom_right",),
        sdpa_options=("window", "softcap", "sinks"),
    )

    def sdpa_paged(self, query, key_pages, value_pages, block_table, cache_lengths, *, is_causal=False,
                   scale=None, enable_gqa=False, window=None, softcap=None, sinks=None):
        dtype = str(query.dtype)
        B, H, L, E = query.shape
        N, P, Hkv, _ = key_pages.shape
        Ev = value_pages.shape[-1]
        require(E % 8 == 0 and Ev == E, "GroupQueryAttention needs head_size a multiple of 8 and Ev = E")
        lengths = np.asarray(cache_lengths, np.int64)
        require((lengths >= L).all(), "GroupQueryAttention's cache holds the L new keys: K_b >= L per sequence")
        w = None
        if window is not None:
            left, right = window
            require(right == 0 and left is not None, "GroupQueryAttention's local window is (w − 1, 0) only")
            w = left + 1                           # local_window_size w keeps w keys (w − 1, 0)
        args = (dtype, H, Hkv, bool(is_causal), None if scale is None else float(scale),
                None if softcap is None else float(softcap), w, sinks is not None)
        table = np.clip(np.asarray(block_table, np.int64), 0, N - 1)   # unused entries: garbage pages
        outs, lses = [], []
        for b in range(B):
            outs_b, lse_b = self._sequence(args, query[b:b + 1], key_pages, value_pages, table[b], int(lengths[b]),
                                           sinks)
            outs.append(outs_b)
            lses.append(lse_b)
        return np.concatenate(outs), np.concatenate(lses).astype(np.float32)   # paged.dtype: float32

    def _sequence(self, args, q, key_pages, value_pages, row, k_b, sinks):
        _, H, L, E = q.shape
        Hkv = key_pages.shape[2]
        cache_k = key_pages[row].reshape(-1, Hkv, E).transpose(1, 0, 2)[None]     # (1, Hkv, M·P, E)
        cache_v = value_pages[row].reshape(-1, Hkv, E).transpose(1, 0, 2)[None]
        new = slice(k_b - L, k_b)
        feeds = {"query": q.transpose(0, 2, 1, 3).reshape(1, L, H * E),
                 "key": cache_k[:, :, new].transpose(0, 2, 1, 3).reshape(1, L, Hkv * E),
                 "value": cache_v[:, :, new].transpose(0, 2, 1, 3).reshape(1, L, Hkv * E),
                 "past_key": cache_k, "past_value": cache_v,
                 "seqlens_k": np.array([k_b - 1], np.int32), "total_sequence_length": np.array(k_b, np.int32)}
        if sinks is not None:
            feeds["head_sink"] = np.asarray(sinks)
        feeds = {n: np.ascontiguousarray(x) for n, x in feeds.items()}
        out, _, _, probs = _session(*args, 2).run(None, feeds)
        logits = _session(*args, 1).run(["output_qk"], feeds)[0]
        p = probs.astype(np.float64)[..., :k_b]
        s = logits.astype(np.float64)[..., :k_b]
        j = p.argmax(axis=-1)[..., None]
        lse = np.take_along_axis(s, j, -1)[..., 0] - np.log(np.take_along_axis(p, j, -1)[..., 0])
        return out.reshape(1, L, H, E).transpose(0, 2, 1, 3), lse


ADAPTERS = (OnnxGqaAdapter,)
