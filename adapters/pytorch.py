"""PyTorch adapters: `F.scaled_dot_product_attention` under each backend, `nn.MultiheadAttention`,
and attnconf's own sinusoidal encoding written in torch.

Rows: torch-math, torch-flash (CPU FLASH_ATTENTION kernel), torch-default (default dispatch),
torch-efficient and torch-cudnn (CUDA only), torch-nn-mha, torch-sinusoidal.
Translates at the border (layout is already canonical; bottom-right causal, MHA mask polarity and
weight layout are translated) and never repairs torch's behaviour.
torch is imported inside methods only, so that `import attnconf.adapters.pytorch` needs NumPy only.
"""
from __future__ import annotations

import numpy as np

from attnconf.adapters.base import Adapter, Capabilities, require, shape_of
from attnconf.dtypes import DTYPE_NAMES, numpy_dtype
from attnconf.errors import SetupError


def select_torch_device(requested: str, cuda_available: bool) -> str:
    """The torch device string for an attnconf device name ("gpu" is accepted as "cuda").

    Raises SetupError when a GPU is asked for and torch sees no CUDA device.
    """
    if requested == "cpu":
        return "cpu"
    if requested in ("cuda", "gpu"):
        if not cuda_available:
            raise SetupError(f"device {requested!r} should be a CUDA device torch can see, but "
                             "torch.cuda.is_available() is False")
        return "cuda"
    raise SetupError(f"device should be one of 'cpu', 'cuda', 'gpu', but got {requested!r}")


def _torch_dtype(name: str):
    import torch

    return {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
            "bfloat16": torch.bfloat16}[name]


def native_dtype(name: str):
    """The torch dtype for a dtype name (what a plug-in function's dtype= receives)."""
    return _torch_dtype(name)


def vjp(fn, primals, cotangent):
    """Gradients of <fn(*primals), cotangent> with respect to each primal, through autograd."""
    import torch

    args = tuple(p.detach().requires_grad_(True) for p in primals)
    with torch.enable_grad():
        out = fn(*args)
        return torch.autograd.grad(out, args, cotangent)


class TorchArrays:
    """NumPy <-> torch conversion, shared by every torch adapter and torch plug-in functions."""

    framework = "torch"
    modules = ("torch",)

    @classmethod
    def availability(cls):
        try:
            import torch  # noqa: F401
        except Exception as exc:
            return False, f"torch is not importable: {type(exc).__name__}: {exc}"
        return True, ""

    def device_status(self):
        import torch

        try:
            select_torch_device(self.device, torch.cuda.is_available())
        except SetupError as exc:
            return False, str(exc)
        return True, ""

    def _device(self):
        import torch

        return select_torch_device(self.device, torch.cuda.is_available())

    def from_numpy(self, array, dtype):
        import torch

        # Round once in NumPy/ml_dtypes (a float64 -> float32 -> bfloat16 path would round twice);
        # bfloat16 crosses as its 16-bit pattern because torch.from_numpy cannot take ml_dtypes.
        a = np.ascontiguousarray(np.asarray(array).astype(numpy_dtype(dtype)))
        if dtype == "bfloat16":
            t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(a)
        return t.to(self._device())

    def from_numpy_bool(self, mask):
        import torch

        return torch.from_numpy(np.ascontiguousarray(mask, dtype=bool)).to(self._device())

    def index_from_numpy(self, arr):
        import torch

        # int64: torch's index dtype, and what HF/torchtune build position_ids / input_pos with.
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int64)).to(self._device())

    def to_numpy(self, value):
        import torch

        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(numpy_dtype("bfloat16"))
        return t.numpy()

    def synchronize(self, value):
        import torch

        if self.device != "cpu" and torch.cuda.is_available():
            torch.cuda.synchronize()


class TorchSdpaAdapter(TorchArrays, Adapter):
    """F.scaled_dot_product_attention, restricted to one backend with sdpa_kernel (None = default)."""

    backend: str | None = None
    cuda_only = False
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp"), dtypes=DTYPE_NAMES,
        causal_alignments=("top_left", "bottom_right"),
        mask_and_causal=False,  # the MATH path raises "Explicit attn_mask should not be set when is_causal=True"
        gradients=True, sdpa_options=("query_offset",),  # as causal_lower_right (a decode step)
    )

    def cpu_status(self):
        if self.cuda_only:
            return False, f"{self.name} needs a CUDA device (the {self.backend} backend has no CPU kernel)"
        return True, ""

    def device_status(self):
        if self.device == "cpu":
            return self.cpu_status()
        return super().device_status()

    def _call(self, query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa):
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel

        require(query.ndim == 4, "attnconf passes 4-D (B, H, L, E) tensors")
        if not self.capabilities.value_dim_differs:
            require(value.shape[-1] == query.shape[-1],
                    f"{self.name} needs equal head dims for query and value (Ev == E): torch reports "
                    "'No available kernel' otherwise")
        mask = attn_mask
        if is_causal and causal_alignment == "bottom_right":
            from torch.nn.attention.bias import causal_lower_right

            # torch's is_causal is top-left; bottom-right is the CausalBias object passed as the mask.
            require(attn_mask is None, "torch cannot combine causal_lower_right with another attn_mask")
            mask, is_causal = causal_lower_right(query.shape[-2], key.shape[-2]), False
        elif is_causal and attn_mask is not None:
            require(self.capabilities.mask_and_causal,
                    f"{self.name}: torch rejects attn_mask together with is_causal=True")
            require(self.backend is not None or value.shape[-1] == query.shape[-1],
                    f"{self.name}: with Ev != E default dispatch falls back to MATH, which rejects "
                    "attn_mask together with is_causal=True")
        kwargs = dict(attn_mask=mask, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
        if self.backend is None:
            return F.scaled_dot_product_attention(query, key, value, **kwargs)
        with sdpa_kernel([getattr(SDPBackend, self.backend)]):
            return F.scaled_dot_product_attention(query, key, value, **kwargs)

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, query_offset=None):
        import torch

        causal_alignment = _decode_alignment(query, key, causal_alignment, query_offset)
        with torch.no_grad():
            return self._call(query, key, value, attn_mask, is_causal, causal_alignment, scale, enable_gqa)

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, query_offset=None):
        causal_alignment = _decode_alignment(query, key, causal_alignment, query_offset)
        return vjp(lambda q, k, v: self._call(q, k, v, attn_mask, is_causal, causal_alignment,
                                              scale, enable_gqa), (query, key, value), grad_output)


def _decode_alignment(query, key, causal_alignment, query_offset):
    """A decode step's past length P (query i at P + i) as torch says it: causal_lower_right, the
    frontier j <= i + S - L, which is the step's only when every P_b = S - L (the cache ends at S)."""
    if query_offset is None:
        return causal_alignment
    past = key.shape[-2] - query.shape[-2]
    require(bool((query_offset == past).all()),
            f"torch expresses a decode step only as causal_lower_right (past length S - L = {past} "
            "for every sequence)")
    return "bottom_right"


class TorchMathAdapter(TorchSdpaAdapter):
    name = "torch-math"
    backend = "MATH"
    description = "torch.nn.functional.scaled_dot_product_attention, MATH backend"


class TorchFlashAdapter(TorchSdpaAdapter):
    name = "torch-flash"
    backend = "FLASH_ATTENTION"
    description = ("torch.nn.functional.scaled_dot_product_attention, FLASH_ATTENTION backend "
                   "(the CPU flash kernel on cpu): 4-D only, Ev == E, no dropout")
    # Seen here (torch 2.13 CPU): Ev != E gives "No available kernel"; attn_mask + is_causal is accepted.
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp"), dtypes=DTYPE_NAMES,
        causal_alignments=("top_left", "bottom_right"), mask_and_causal=True,
        value_dim_differs=False, gradients=True, sdpa_options=("query_offset",),
    )


class TorchDefaultAdapter(TorchSdpaAdapter):
    name = "torch-default"
    backend = None
    description = "torch.nn.functional.scaled_dot_product_attention, default backend dispatch"
    # Seen here (CPU): default dispatch picks the flash kernel, which accepts attn_mask + is_causal;
    # where flash cannot run (Ev != E) it falls back to MATH, which rejects the pair.
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp"), dtypes=DTYPE_NAMES,
        causal_alignments=("top_left", "bottom_right"), mask_and_causal=True, gradients=True,
        sdpa_options=("query_offset",),
    )


class TorchEfficientAdapter(TorchSdpaAdapter):
    name = "torch-efficient"
    backend = "EFFICIENT_ATTENTION"
    cuda_only = True
    device = "cuda"
    description = "torch.nn.functional.scaled_dot_product_attention, EFFICIENT_ATTENTION backend (CUDA)"


class TorchCudnnAdapter(TorchSdpaAdapter):
    name = "torch-cudnn"
    backend = "CUDNN_ATTENTION"
    cuda_only = True
    device = "cuda"
    description = "torch.nn.functional.scaled_dot_product_attention, CUDNN_ATTENTION backend (CUDA)"
    capabilities = Capabilities(
        operations=("sdpa", "sdpa_vjp"), dtypes=("float16", "bfloat16"),  # cuDNN attention: half types only
        causal_alignments=("top_left", "bottom_right"), mask_and_causal=False,
        value_dim_differs=False, gradients=True, sdpa_options=("query_offset",),
    )


def _broadcast_mask_for_mha(mask, batch, heads, L, S):
    """Canonical mask (broadcastable to (B, H, L, S)) -> torch MHA's (L, S) or (B·H, L, S)."""
    m4 = mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape))
    if m4.shape[0] == 1 and m4.shape[1] == 1:
        return m4.reshape(m4.shape[-2:]).expand(L, S)
    return m4.expand(batch, heads, L, S).reshape(batch * heads, L, S)


class TorchMultiheadAttentionAdapter(TorchArrays, Adapter):
    name = "torch-nn-mha"
    description = "torch.nn.MultiheadAttention (batch_first) with the canonical weights loaded"
    capabilities = Capabilities(
        operations=("multi_head_attention",), dtypes=DTYPE_NAMES,
        causal_alignments=("top_left",), gqa=False, value_dim_differs=False, mha_kv_heads=False,
    )

    def multi_head_attention(self, query_input, key_value_input, weights, *, num_heads,
                             num_kv_heads=None, attn_mask=None, is_causal=False):
        import torch

        B, L, D = shape_of(query_input)
        S, Dkv = shape_of(key_value_input)[1:]
        H = num_heads
        require(num_kv_heads in (None, H), "torch.nn.MultiheadAttention has no grouped key/value heads")
        wq, wk, wv, wo = (weights[n] for n in ("wq", "wk", "wv", "wo"))
        require(wq.shape[1] == D and wk.shape[1] == D and wv.shape[1] == D and tuple(wo.shape) == (D, D),
                "torch.nn.MultiheadAttention projects query, key and value to embed_dim: H·E = H·Ev = D")
        biases = [weights.get(n) for n in ("bq", "bk", "bv", "bo")]
        has_bias = any(b is not None for b in biases)
        mha = torch.nn.MultiheadAttention(D, H, bias=has_bias, kdim=Dkv, vdim=Dkv, batch_first=True,
                                          device=query_input.device, dtype=query_input.dtype)
        mha.eval()
        with torch.no_grad():
            # torch applies x @ W.T: its weights are the transposes of the canonical x @ W ones.
            if mha._qkv_same_embed_dim:
                mha.in_proj_weight.copy_(torch.cat([wq.T, wk.T, wv.T], dim=0))
            else:
                mha.q_proj_weight.copy_(wq.T)
                mha.k_proj_weight.copy_(wk.T)
                mha.v_proj_weight.copy_(wv.T)
            mha.out_proj.weight.copy_(wo.T)
            if has_bias:  # torch has one bias switch; an absent canonical bias is an exact zero
                zero = torch.zeros(D, dtype=query_input.dtype, device=query_input.device)
                bq, bk, bv, bo = (zero if b is None else b for b in biases)
                mha.in_proj_bias.copy_(torch.cat([bq, bk, bv]))
                mha.out_proj.bias.copy_(bo)
            mask = self._mask(attn_mask, is_causal, B, H, L, S, query_input)
            kv = key_value_input
            out, _ = mha(query_input, kv, kv, attn_mask=mask, need_weights=False,
                         is_causal=is_causal and attn_mask is None)
        return out

    @staticmethod
    def _mask(attn_mask, is_causal, B, H, L, S, like):
        import torch

        if attn_mask is None and not is_causal:
            return None
        if attn_mask is None:
            attn_mask = torch.ones(L, S, dtype=torch.bool, device=like.device)
        m = _broadcast_mask_for_mha(attn_mask, B, H, L, S)
        if is_causal:
            # nn.MultiheadAttention's is_causal is only a hint: the causal mask must be passed too.
            tril = torch.ones(L, S, dtype=torch.bool, device=like.device).tril()
            m = m & tril if m.dtype == torch.bool else m.masked_fill(~tril, float("-inf"))
        # nn.MultiheadAttention's bool mask means True = NOT allowed: the opposite of canonical/SDPA.
        return ~m if m.dtype == torch.bool else m


def torch_sinusoidal(num_positions, dim, *, base=10000.0, offset=0, layout="interleaved",
                     frequencies="vaswani", dtype="float32", device="cpu"):
    """attnconf's own table in torch, computed the way typical code does (PyTorch tutorial):
    angles p·ω in float32 (float64 for a float64 table), lower dtypes rounded once at the end."""
    import math

    import torch

    compute = torch.float64 if dtype == "float64" else torch.float32
    kw = dict(dtype=compute, device=device)
    pos = (torch.arange(num_positions, dtype=torch.int64, device=device) + offset).to(compute)
    if frequencies == "vaswani":
        omega = torch.exp(torch.arange(0, dim, 2, **kw) * (-math.log(base) / dim))  # i = 0 … ceil(d/2)−1
        n_sin, n_cos = (dim + 1) // 2, dim // 2
    else:  # t2t: n = floor(d/2), ω_i = base^(−i / max(n−1, 1))
        n = dim // 2
        omega = torch.exp(torch.arange(n, **kw) * (-math.log(base) / max(n - 1, 1)))
        n_sin = n_cos = n
    angles = pos[:, None] * omega[None, :]
    sin, cos = torch.sin(angles)[:, :n_sin], torch.cos(angles)[:, :n_cos]
    if layout == "interleaved":
        table = torch.zeros(num_positions, n_sin + n_cos, **kw)
        table[:, 0::2], table[:, 1::2] = sin, cos
    elif layout == "concat":
        table = torch.cat([sin, cos], dim=1)
    else:
        table = torch.cat([cos, sin], dim=1)
    if table.shape[1] < dim:  # t2t with odd d: the zero column stays last
        table = torch.cat([table, torch.zeros(num_positions, dim - table.shape[1], **kw)], dim=1)
    return table.to(_torch_dtype(dtype))


class TorchSinusoidalAdapter(TorchArrays, Adapter):
    name = "torch-sinusoidal"
    description = ("attnconf's OWN sinusoidal encoding written in torch from the spec (not a torch "
                   "API): angles in float32 as the PyTorch tutorial does")
    capabilities = Capabilities(
        operations=("sinusoidal_encoding",), dtypes=DTYPE_NAMES,
        encoding_layouts=("interleaved", "concat", "cos_first"), encoding_frequencies=("vaswani", "t2t"),
    )

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        return torch_sinusoidal(num_positions, dim, base=base, offset=offset, layout=layout,
                                frequencies=frequencies, dtype=dtype, device=self._device())


ADAPTERS = (TorchMathAdapter, TorchFlashAdapter, TorchDefaultAdapter, TorchEfficientAdapter,
            TorchCudnnAdapter, TorchMultiheadAttentionAdapter, TorchSinusoidalAdapter)
