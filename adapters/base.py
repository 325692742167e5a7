"""The adapter protocol: one small class per implementation under test.

An adapter translates the canonical layout and conventions of spec/ to a framework's own at the
border and never repairs the framework's behaviour: the suite must see what the framework does.
Must not import any framework at module level.

Shape legend (as in spec/): B batch, H query heads, Hkv key/value heads, L queries, S keys,
E head dim, Ev value head dim, D model dim.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from attnconf.errors import Unsupported
from attnconf.choices import (ALIBI_ALIGNMENTS, ALIBI_MODES, POSITION_ID_SCHEMES, RELATIVE_INDEX_ALIGNMENTS,
                              ROPE_TYPES)



def bundled_operations() -> tuple[str, ...]:
    """The names of the operations the package ships (attnconf.operations.BUILTIN), in order."""
    import importlib

    from attnconf import operations

    return tuple(importlib.import_module(f"{operations.__name__}.{m}").OPERATION.name
                 for m in operations.BUILTIN)

# Device names an adapter accepts: "cuda" is PyTorch's word and "gpu" JAX's/TensorFlow's; each
# framework adapter accepts both and maps them to its own device (see `device_status`).
DEVICES = ("cpu", "cuda", "gpu")


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What an implementation declares it supports and claims about its semantics.

    A case that needs something outside these is `skip` (unsupported), never `pass`.
    Claims (fully_masked, causal alignment, encoding variant) say which named alternative of the
    spec the implementation says it follows; the suite checks claims against behaviour.
    """

    operations: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ("float64", "float32")
    mask_kinds: tuple[str, ...] = ("bool", "float")          # attn_mask kinds accepted
    causal_alignments: tuple[str, ...] = ("top_left",)        # subset of ("top_left", "bottom_right")
    mask_and_causal: bool = True                              # attn_mask together with is_causal
    gqa: bool = True                                          # H != Hkv with enable_gqa
    value_dim_differs: bool = True                            # Ev != E
    explicit_scale: bool = True
    fully_masked: str = "zero"                                # claimed policy: zero | uniform | nan
    gradients: bool = False                                   # sdpa_vjp available
    encoding_layouts: tuple[str, ...] = ("interleaved",)      # interleaved | concat | cos_first
    encoding_frequencies: tuple[str, ...] = ("vaswani",)      # vaswani | t2t
    encoding_offset: bool = True
    encoding_base: bool = True                                # base other than 10000
    mha_biases: bool = True
    mha_cross: bool = True                                    # key_value_input differs from query_input
    mha_kv_heads: bool = False                                # GQA in the layer (num_kv_heads < num_heads)
    deterministic: bool = True                                # claims identical outputs for identical inputs
    rope_layouts: tuple[str, ...] = ("interleaved",)          # interleaved (pairs 2i, 2i+1) | half (i, i + r/2)
    rope_scaling: tuple[str, ...] = ROPE_TYPES  # rope_type values accepted
    alibi_modes: tuple[str, ...] = ALIBI_MODES                # alibi_bias modes accepted (alibi.bias*)
    alibi_alignments: tuple[str, ...] = ALIBI_ALIGNMENTS      # alibi_bias alignments accepted (alibi.align.*)
    relative_index_alignments: tuple[str, ...] = RELATIVE_INDEX_ALIGNMENTS   # relpos.index.align.*
    position_id_schemes: tuple[str, ...] = POSITION_ID_SCHEMES   # position_ids schemes accepted (posids.ids.*)
    # sdpa.opt.*: the kernel options of sdpa it takes (attnconf.operations.sdpa.OPTION_NAMES: window,
    # softcap, sinks, alibi_slopes, query_offset, key_lengths, query_lengths); a case setting any
    # other is skipped as unsupported by the registry's call, before the adapter is called
    sdpa_options: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


class Adapter:
    """Base class. Subclasses set the class attributes and override the operations they support.

    Operations take and return *native* arrays (so benchmarks time the framework, not conversion);
    `from_numpy` / `to_numpy` convert at the border. An unsupported operation or option raises
    `attnconf.errors.Unsupported(reason)`.
    """

    name: str = "unnamed"            # unique row name in results, e.g. "torch-math"
    framework: str = "numpy"         # numpy | torch | jax | tensorflow | <other>
    description: str = ""
    device: str = "cpu"
    capabilities: Capabilities = Capabilities()
    # The top-level modules the implementation runs on ("torch", "transformers", …). When given,
    # availability and provenance come from package metadata (importlib.util.find_spec,
    # importlib.metadata) without importing them: the real import happens where the adapter runs
    # (its worker), and a failure there is that adapter's error. Empty: `availability()` decides.
    modules: tuple[str, ...] = ()

    def __init__(self, device: str | None = None):
        if device is not None:
            from attnconf.validation import check_choice

            self.device = check_choice("device", device, DEVICES)

    # -- availability -------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        """(available, reason). Must not raise; import the framework here to find out."""
        return True, ""

    def device_status(self) -> tuple[bool, str]:
        """(usable, reason) for this instance's device. Default: CPU only. Must not raise."""
        if self.device == "cpu":
            return True, ""
        return False, f"{self.name} runs on cpu only, but device {self.device!r} was asked for"

    def is_available(self) -> tuple[bool, str]:
        """availability() of the framework, then device_status() of this instance."""
        available, reason = self.availability()
        if not available:
            return available, reason
        return self.device_status()

    def version(self) -> str:
        """The versions of the libraries it runs on ("torch 2.13.0+cpu, transformers 5.24.0")."""
        return ", ".join(f"{dist} {ver}" for dist, ver in self.libraries().items())

    @classmethod
    def libraries(cls) -> dict[str, str]:
        """{distribution: version} of every installed library of `modules` (package metadata
        only: nothing is imported)."""
        return libraries_of(cls.modules)

    @classmethod
    def installed(cls) -> tuple[bool, str]:
        """(installed, reason): every module of `modules` is found, without importing it."""
        missing = [m for m in cls.modules if not module_found(m)]
        if missing:
            return False, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"
        return True, ""

    def cpu_status(self) -> tuple[bool, str]:
        """(usable, reason) on the CPU, decided without importing the framework (GPU-only
        backends say so here). Default: usable."""
        return True, ""

    def quick_status(self) -> tuple[bool, str]:
        """is_available() without importing a framework where that can be known: for an adapter
        with `modules` on the CPU, package metadata and cpu_status(); otherwise is_available()."""
        if not self.modules:
            return self.is_available()
        installed, reason = self.installed()
        if not installed:
            return installed, reason
        if self.device == "cpu":
            return self.cpu_status()
        if not gpu_driver_present():
            return False, (f"{self.name} runs on device {self.device!r}, but this machine has no GPU driver "
                           f"({', '.join(GPU_DRIVER_FILES)} are absent)")
        return self.is_available()      # which GPUs exist: only the framework knows

    # -- conversion ---------------------------------------------------------------------------
    def from_numpy(self, array: np.ndarray, dtype: str) -> Any:
        """A native array of dtype name `dtype` ("float64" … "bfloat16") holding `array`'s values."""
        raise _missing(self, "from_numpy")

    def to_numpy(self, value: Any) -> np.ndarray:
        """A NumPy array with the native value's dtype (bfloat16 as ml_dtypes.bfloat16)."""
        raise _missing(self, "to_numpy")

    def mask_from_numpy(self, mask: np.ndarray, dtype: str) -> Any:
        """Native form of an attention mask: bool stays bool, a float mask takes `dtype`."""
        if mask.dtype == np.bool_:
            return self.from_numpy_bool(mask)
        return self.from_numpy(mask, dtype)

    def from_numpy_bool(self, mask: np.ndarray) -> Any:
        raise _missing(self, "from_numpy_bool")

    def index_from_numpy(self, arr: np.ndarray) -> Any:
        """A native integer array holding `arr`'s values (RoPE positions), in the integer dtype the
        framework's own position code takes."""
        if not _requires_integers(self.capabilities.operations):
            # nothing it declares needs integers: only an optional integer input (sdpa's lengths
            # and offsets, sdpa.opt.*) asks, and that case is unsupported here, not an error
            raise Unsupported(f"{self.name} takes no integer inputs (it defines no index_from_numpy)")
        raise _missing(self, "index_from_numpy")

    def synchronize(self, value: Any) -> None:
        """Block until `value` is computed (device sync for timing). Default: nothing to do."""

    # -- operations (canonical layout; see spec/) ---------------------------------------------
    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        """(B, H, L, E), (B, Hkv, S, E), (B, Hkv, S, Ev) -> (B, H, L, Ev).

        options (spec/sdpa_options.md), passed only when a case sets them and only if listed in
        capabilities.sdpa_options: window=(left, right), softcap=c, sinks (H,), alibi_slopes (H,)
        or (B, H) (native floats of the case dtype), query_offset, key_lengths, query_lengths
        (B,) (native integers, index_from_numpy)."""
        raise Unsupported(f"{self.name} does not implement sdpa")

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        """Gradients (dq, dk, dv) of <sdpa(...), grad_output> with respect to query, key, value.

        options: the sdpa kernel options listed in capabilities.sdpa_options, as sdpa takes them
        (spec sdpa.opt.grad); with sinks the result is (dq, dk, dv, dsinks), dsinks (H,)."""
        raise Unsupported(f"{self.name} does not implement gradients")

    def sdpa_varlen(self, query, key, value, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                    is_causal=False, causal_alignment="bottom_right", scale=None, enable_gqa=False,
                    window=None, softcap=None, sinks=None):
        """Packed sequences (spec/varlen.md): (total_q, H, E), (total_k, Hkv, E), (total_k, Hkv, Ev),
        cu_seqlens (B + 1,) native integers -> (output (total_q, H, Ev), lse (total_q, H) or None).
        window/softcap/sinks are passed only when a case sets them and the adapter lists them in
        its `varlen_options` (attnconf.operations.sdpa_varlen)."""
        raise Unsupported(f"{self.name} does not implement sdpa_varlen")

    def sdpa_paged(self, query, key_pages, value_pages, block_table, cache_lengths, *, is_causal=False,
                   scale=None, enable_gqa=False, **options):
        """Attention over a paged KV cache (spec/paged.md): query (B, H, L, E), key_pages
        (N, P, Hkv, E), value_pages (N, P, Hkv, Ev), block_table (B, M) and cache_lengths (B,)
        native integers -> (output (B, H, L, Ev), lse (B, H, L)). options as sdpa's, listed in
        capabilities.sdpa_options: window, softcap, chunk, sinks, alibi_slopes."""
        raise Unsupported(f"{self.name} does not implement sdpa_paged")
    def sdpa_lse(self, query, key, value, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        """(output (B, H, L, Ev), lse (B, H, L)): sdpa's output and each row's natural-log
        log-sum-exp, −∞ for a row with no key, float32 below float64 (spec sdpa.lse.*); the
        arguments and options as sdpa's."""
        raise Unsupported(f"{self.name} does not implement sdpa_lse")

    def merge_attention_states(self, outputs, lses):
        """outputs (N, B, H, L, Ev), lses (N, B, H, L) -> the merged (output (B, H, L, Ev),
        lse (B, H, L)) (spec sdpa.merge.*); lses arrive in the case dtype (exact values)."""
        raise Unsupported(f"{self.name} does not implement merge_attention_states")

    def multi_head_attention(self, query_input, key_value_input, weights: dict, *, num_heads,
                             num_kv_heads=None, attn_mask=None, is_causal=False):
        """(B, L, D), (B, S, Dkv), canonical weights (see spec/mha.md) -> (B, L, D)."""
        raise Unsupported(f"{self.name} does not implement multi_head_attention")

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        """A (num_positions, dim) table of dtype `dtype` (see spec/encoding.md)."""
        raise Unsupported(f"{self.name} does not implement sinusoidal_encoding")

    def rotary_embedding(self, x, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                         layout="interleaved"):
        """x (B, H, T, E) rotated by its integer `positions` (T,) or (B, T) -> x's shape and dtype
        (see spec/ for rotary_embedding; `scaling` uses HF transformers' field names)."""
        raise Unsupported(f"{self.name} does not implement rotary_embedding")

    def rope_cache(self, x, cos_cache, sin_cache, position_ids, *, rotary_dim=None, layout="half"):
        """x (B, H, T, E) rotated by the cache rows (N, r/2) its integer position_ids (B, T) name
        (see spec/rope.md, rope.cache.*; layout "half" | "interleaved") -> x's shape and dtype."""
        raise Unsupported(f"{self.name} does not implement rope_cache")

    # -- position biases and learned positions (spec/alibi.md, relative_position.md, position_ids.md)
    # Integer outputs in any integer dtype; `table` inputs native floats, `attention_mask` and
    # `position_ids` native integers (index_from_numpy).
    def alibi_slopes(self, num_heads, *, max_bias=8.0, dtype="float32"):
        """(H,) ALiBi slopes of dtype `dtype`."""
        raise Unsupported(f"{self.name} does not implement alibi_slopes")

    def alibi_bias(self, num_heads, query_length, key_length, *, max_bias=8.0, mode="causal",
                   alignment="bottom_right", dtype="float32"):
        """(H, L, S) ALiBi bias of dtype `dtype`."""
        raise Unsupported(f"{self.name} does not implement alibi_bias")

    def relative_position_bucket(self, query_length, key_length, *, bidirectional=True, num_buckets=32,
                                 max_distance=128, query_offset=0):
        """(L, S) integer T5 buckets of rel = j − (i + query_offset)."""
        raise Unsupported(f"{self.name} does not implement relative_position_bucket")

    def relative_position_bias(self, table, query_length, key_length, *, bidirectional=True,
                               num_buckets=32, max_distance=128, query_offset=0):
        """table (num_buckets, H) -> (H, L, S) = table[bucket, h], the table's dtype."""
        raise Unsupported(f"{self.name} does not implement relative_position_bias")

    def relative_position_index(self, query_length, key_length, *, max_relative_position,
                                alignment="top_left"):
        """(L, S) integer clip(j − i', −K, K) + K (Shaw et al.)."""
        raise Unsupported(f"{self.name} does not implement relative_position_index")

    def position_ids(self, attention_mask, *, scheme, past_length=0, padding_idx=1):
        """attention_mask (B, past_length + T) integer 0/1 -> (B, T) integer table rows."""
        raise Unsupported(f"{self.name} does not implement position_ids")

    def position_embedding(self, table, position_ids):
        """table (N, D), integer ids (B, T) -> (B, T, D) = table[ids]; ids outside [0, N) raise."""
        raise Unsupported(f"{self.name} does not implement position_embedding")

    # -- description --------------------------------------------------------------------------
    def describe(self) -> dict:
        """Its row in the results file and `attnconf adapters`; imports no framework when the
        adapter declares `modules` (quick_status), so listing and planning stay fast."""
        available, reason = self.quick_status()
        return {
            "name": self.name,
            "framework": self.framework,
            "version": self.version() if available else "",
            "libraries": self.libraries() if self.modules else {},
            "device": self.device,
            "available": available,
            "reason": reason,
            "description": self.description,
            "capabilities": self.capabilities.to_json(),
        }


def importable(module: str) -> tuple[bool, str]:
    """(True, "") when `module` imports, else (False, why): the availability of an adapter that
    needs one submodule beyond its framework (FlexAttention, PagedAttention, a Pallas kernel).
    Imports it: call it from `availability()`, which runs where the adapter runs."""
    import importlib

    try:
        importlib.import_module(module)
    except Exception as exc:
        return False, f"{module} is not importable: {type(exc).__name__}: {exc}"
    return True, ""


def module_found(module: str) -> bool:
    """Whether top-level `module` can be imported, without importing it."""
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None     # None: the import is blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# Files a GPU driver leaves on Linux (NVIDIA, AMD ROCm, WSL); none of them: no framework sees a GPU.
GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")


def gpu_driver_present() -> bool:
    """Whether a GPU could be visible, decided without importing a framework (elsewhere than on
    Linux: assume it could, and let the framework say)."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(path) for path in GPU_DRIVER_FILES)


_DISTRIBUTIONS: dict | None = None


def libraries_of(modules) -> dict[str, str]:
    """{distribution name: version} of the installed distributions providing `modules`."""
    global _DISTRIBUTIONS
    from importlib import metadata

    if _DISTRIBUTIONS is None:
        _DISTRIBUTIONS = metadata.packages_distributions()
    found: dict[str, str] = {}
    for module in modules:
        for dist in _DISTRIBUTIONS.get(module, ()):
            try:
                meta = metadata.distribution(dist)
            except metadata.PackageNotFoundError:
                continue
            found.setdefault(meta.metadata["Name"].replace("_", "-").lower(), meta.version)
    return found


def _missing(adapter, method: str) -> TypeError:
    # Not NotImplementedError: that is a plug-in declining a case (a skip); a conversion the
    # adapter never wrote is a broken adapter, and its records must say so (error).
    return TypeError(f"{type(adapter).__name__} should define {method} (Adapter leaves it to subclasses), "
                     "but does not")


def _requires_integers(names) -> bool:
    """Whether one of the operations `names` has a required integer input (RoPE's positions)."""
    from attnconf import operations

    known = {op.name: op for op in operations.operations()}
    return any(set(known[n].index_inputs) & set(known[n].inputs) for n in names if n in known)


def require(condition: bool, reason: str) -> None:
    """Raise Unsupported(reason) unless condition holds: the adapter's guard for options."""
    if not condition:
        raise Unsupported(reason)


def shape_of(x) -> Sequence[int]:
    return tuple(int(d) for d in x.shape)
