"""An Adapter subclass: a NumPy attention that walks the keys in chunks (online softmax).

Run it: attnconf run --adapter example_adapter:NumpyChunkedAdapter   (from this folder)
A class states its capabilities itself and converts arrays itself (here: plain NumPy).
"""
import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.dtypes import numpy_dtype


class NumpyChunkedAdapter(Adapter):
    name = "example-numpy-chunked"
    framework = "numpy"
    description = "example: NumPy SDPA with a chunked online softmax (float64 accumulation)"
    capabilities = Capabilities(operations=("sdpa",), dtypes=("float64", "float32"), gqa=False,
                                causal_alignments=("top_left",))
    chunk = 3

    def version(self):
        return np.__version__

    def from_numpy(self, array, dtype):
        return np.asarray(array).astype(numpy_dtype(dtype))

    def from_numpy_bool(self, mask):
        return np.asarray(mask, dtype=bool)

    def to_numpy(self, value):
        return np.asarray(value)

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False):
        require(query.shape[1] == key.shape[1], "example adapter has no GQA")
        require(not is_causal or causal_alignment == "top_left" or query.shape[2] == key.shape[2],
                "example adapter is top-left causal only")
        q, k, v = (np.asarray(x, np.float64) for x in (query, key, value))
        B, H, L, E = q.shape
        S = k.shape[2]
        scale = 1 / np.sqrt(E) if scale is None else scale
        bias = np.zeros((L, S))
        if attn_mask is not None:
            m = np.broadcast_to(attn_mask, (B, H, L, S))
            bias = np.where(m, 0.0, -np.inf) if m.dtype == bool else m.astype(np.float64)
        if is_causal:
            bias = bias + np.where(np.tril(np.ones((L, S), bool)), 0.0, -np.inf)
        bias = np.broadcast_to(bias, (B, H, L, S))
        top = np.full((B, H, L, 1), -np.inf)
        total = np.zeros((B, H, L, 1))
        acc = np.zeros((B, H, L, v.shape[-1]))
        for j in range(0, S, self.chunk):
            s = np.einsum("bhle,bhse->bhls", q, k[:, :, j:j + self.chunk]) * scale + bias[..., j:j + self.chunk]
            new_top = np.maximum(top, s.max(axis=-1, keepdims=True))
            safe = np.where(np.isfinite(new_top), new_top, 0.0)
            rescale = np.exp(np.where(np.isfinite(top), top - safe, -np.inf))
            p = np.exp(s - safe)
            total = total * rescale + p.sum(axis=-1, keepdims=True)
            acc = acc * rescale + np.einsum("bhls,bhsv->bhlv", p, v[:, :, j:j + self.chunk])
            top = new_top
        out = np.divide(acc, total, out=np.zeros_like(acc), where=total > 0)
        return out.astype(query.dtype)
