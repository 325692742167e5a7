"""Which adapters exist and how to build one: bundled, entry points, `--adapter PKG.MOD:CLASS`,
and bare functions (`--sdpa` / `--encoding`: each registered operation's `plugin_flag`).

An `AdapterSpec` is plain JSON so a worker process can rebuild the adapter with `instantiate`.
Importing this module imports no framework; `discover()` and `resolve()` do (availability checks).
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from importlib import metadata

from attnconf.adapters.base import DEVICES, Adapter
from attnconf.adapters.loading import load_target
from attnconf.errors import SetupError, UsageError
from attnconf.validation import check_choice

ENTRY_POINT_GROUP = "attnconf.adapters"

# name -> "module:Class"; modules import their framework lazily, so listing costs nothing.
BUNDLED = {
    "numpy-reference": "attnconf.adapters.numpy_reference:NumpyReferenceAdapter",
    "torch-math": "attnconf.adapters.pytorch:TorchMathAdapter",
    "torch-flash": "attnconf.adapters.pytorch:TorchFlashAdapter",
    "torch-default": "attnconf.adapters.pytorch:TorchDefaultAdapter",
    "torch-efficient": "attnconf.adapters.pytorch:TorchEfficientAdapter",
    "torch-cudnn": "attnconf.adapters.pytorch:TorchCudnnAdapter",
    "torch-nn-mha": "attnconf.adapters.pytorch:TorchMultiheadAttentionAdapter",
    "torch-sinusoidal": "attnconf.adapters.pytorch:TorchSinusoidalAdapter",
    "jax-xla": "attnconf.adapters.jax_nn:JaxXlaAdapter",
    "jax-cudnn": "attnconf.adapters.jax_nn:JaxCudnnAdapter",
    "jax-sinusoidal": "attnconf.adapters.jax_nn:JaxSinusoidalAdapter",
    "keras-tf": "attnconf.adapters.keras_tf:KerasTfAdapter",
    "keras-tf-mha": "attnconf.adapters.keras_tf:KerasTfMultiHeadAttentionAdapter",
    "tf-sinusoidal": "attnconf.adapters.keras_tf:TfSinusoidalAdapter",
    "keras-hub-sine": "attnconf.adapters.keras_hub:KerasHubSineAdapter",
    "hf-rope": "attnconf.adapters.hf_rope:HfRopeAdapter",
    "keras-hub-rope": "attnconf.adapters.keras_hub_rope:KerasHubRopeAdapter",
    "keras-hub-rope-jax": "attnconf.adapters.keras_hub_rope:KerasHubRopeJaxAdapter",
    "hf-t5-bias": "attnconf.adapters.hf_t5_bias:HfT5BiasAdapter",
    "hf-bloom-alibi": "attnconf.adapters.hf_bloom_alibi:HfBloomAlibiAdapter",
    "hf-roberta-positions": "attnconf.adapters.hf_roberta_positions:HfRobertaPositionsAdapter",
    "hf-opt-positions": "attnconf.adapters.hf_opt_positions:HfOptPositionsAdapter",
    "keras-hub-alibi": "attnconf.adapters.keras_hub_alibi:KerasHubAlibiAdapter",
    "keras-hub-alibi-jax": "attnconf.adapters.keras_hub_alibi:KerasHubAlibiJaxAdapter",
    "hf-speecht5-relpos": "attnconf.adapters.hf_speecht5_relpos:HfSpeechT5RelposAdapter",
    "torch-flex": "attnconf.adapters.torch_flex:TorchFlexAdapter",
    "torch-flex-paged": "attnconf.adapters.torch_flex_paged:TorchFlexPagedAdapter",
    "hf-eager": "attnconf.adapters.hf_attention:HfEagerAdapter",
    "hf-eager-sinks": "attnconf.adapters.hf_attention:HfEagerSinksAdapter",
    "hf-sdpa": "attnconf.adapters.hf_attention:HfSdpaAdapter",
    "onnx-attention": "attnconf.adapters.onnx_attention:OnnxAttentionAdapter",
    "torch-nested": "attnconf.adapters.torch_nested:TorchNestedAdapter",
    "jax-varlen": "attnconf.adapters.jax_varlen:JaxVarlenAdapter",
    "torch-flex-varlen": "attnconf.adapters.torch_flex_varlen:TorchFlexVarlenAdapter",
    "jax-pallas-segments": "attnconf.adapters.jax_pallas_segments:JaxPallasSegmentsAdapter",
    "onnx-gqa": "attnconf.adapters.onnx_gqa:OnnxGqaAdapter",
    "torch-flash-lse": "attnconf.adapters.torch_flash_lse:TorchFlashLseAdapter",
    "torch-cp-merge": "attnconf.adapters.torch_cp_merge:TorchCpMergeAdapter",
    "torch-math-masks": "attnconf.adapters.torch_masks:TorchMathMasksAdapter",
    "onnx-rope": "attnconf.adapters.onnx_rope:OnnxRopeAdapter",
    "ort-rope-contrib": "attnconf.adapters.onnx_rope:OrtRopeContribAdapter",
}
# Bundled but run only when named (`--adapter NAME`): too slow for the default run's 90 s here.
# torch-flex: eager FlexAttention costs ~40 ms a call (vmapped score_mod/mask_mod), ~400 s a run.
# hf-eager-sinks, hf-sdpa: ~12 and ~11 CPU-s each, mostly their worker's transformers import
# (hf-eager, kept, costs ~15; onnx-attention ~2). (torch.compile'd FlexAttention, ~30 s per
# compile, is not bundled: --adapter attnconf.adapters.torch_flex:TorchFlexCompiledAdapter.)
# torch-flex-varlen (eager FlexAttention over the packed batch) and jax-varlen (XLA compiles per
# padded shape) cost ~90 s and ~80 s of wall time for their 70 records here; torch-nested ~4 CPU-s.
# torch-flex-paged: eager PagedAttention costs ~1 s a call here (create_block_mask and the vmapped
# mods over the whole page pool), ~230 s for its paged records alone.
OPT_IN = ("torch-flex", "hf-eager-sinks", "hf-sdpa", "torch-flex-varlen", "jax-varlen", "jax-pallas-segments",
          "torch-flex-paged")
KINDS = ("bundled", "class", "function")


@dataclasses.dataclass(frozen=True)
class AdapterSpec:
    """How to build one adapter, as JSON.

    kind "bundled": target is a BUNDLED name; "class": target is `PKG.MOD:CLASS` (from --adapter or
    an entry point); "function": target is `PKG.MOD:FUNC`, with framework and operation (the
    registry name of an operation with a plug-in flag; "" = the first such operation, sdpa).
    name is the row name ("" = the adapter's own name).
    """

    kind: str
    target: str
    framework: str = ""
    operation: str = ""
    device: str = "cpu"
    name: str = ""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "AdapterSpec":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise UsageError(f"adapter spec keys should be among {sorted(fields)}, but got {sorted(unknown)}")
        spec = cls(**data)
        check_choice("adapter spec kind", spec.kind, KINDS)
        return spec


def _bundled_class(name: str) -> type[Adapter]:
    module, cls = BUNDLED[name].split(":")
    return getattr(importlib.import_module(module), cls)


def _construct(cls, device: str) -> Adapter:
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise UsageError(f"adapter should be a subclass of attnconf.adapters.base.Adapter, but got {cls!r}")
    try:
        accepts_device = "device" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepts_device = False
    if accepts_device:
        return cls(device=device)
    adapter = cls()  # a third-party class that overrides __init__ without device=
    adapter.device = device
    return adapter


def entry_points() -> list:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _entry_point_row(ep, device: str) -> dict:
    """describe() of an entry point's adapter, or an unavailable row naming why it did not load."""
    try:
        adapter = instantiate(AdapterSpec("class", ep.value, device=device, name=ep.name))
    except Exception as exc:  # a plug-in that raises at import must not break the listing
        first = str(exc).splitlines()[0] if str(exc) else ""
        return {"name": ep.name, "framework": "", "version": "", "device": device, "available": False,
                "reason": f"entry point {ep.name} = {ep.value} failed to load: {type(exc).__name__}: {first}",
                "description": "", "capabilities": {}, "source": "entry point"}
    row = adapter.describe()
    row["source"] = "entry point"
    return row


def discover(device: str | None = None) -> list[dict]:
    """describe() of every bundled adapter (each on its default device unless `device` is given)
    and every `attnconf.adapters` entry point."""
    rows = []
    for name in BUNDLED:
        cls = _bundled_class(name)
        row = cls(device=device).describe()
        row["source"] = "bundled"
        rows.append(row)
    rows.extend(_entry_point_row(ep, device or "cpu") for ep in entry_points())
    return rows


def _known_names() -> list[str]:
    return list(BUNDLED) + [ep.name for ep in entry_points()]


def function_targets(functions=None, **flags) -> dict:
    """{operation name: `PKG.MOD:FUNC`} from `functions` and flag-named keywords (sdpa=…,
    encoding=…: an operation's plugin_flag without its dashes), in registry order; None dropped."""
    from attnconf import operations

    wanted = {operations.get(name).name: target for name, target in dict(functions or {}).items()}
    for flag, target in flags.items():
        op = operations.with_flag(f"--{flag.replace('_', '-')}")
        if op is None:
            known = [o.plugin_flag[2:] for o in operations.operations() if o.plugin_flag]
            raise UsageError(f"a bare-function keyword should be one of {', '.join(known)}, but got {flag!r}")
        if target:
            wanted[op.name] = target
    order = operations.names()
    return {name: t for name, t in sorted(wanted.items(), key=lambda kv: order.index(kv[0])) if t}


def resolve(names=None, *, functions=None, framework=None, adapter_classes=(), device="cpu",
            **flags) -> list[AdapterSpec]:
    """The adapters a run asked for. No names, functions or classes: every available bundled adapter
    but the OPT_IN ones.

    names: bundled or entry-point names; functions: {operation name: `PKG.MOD:FUNC`}, or by flag,
    sdpa=…, encoding=… (any registered plug-in flag, as `--sdpa` reads), with framework;
    adapter_classes: `PKG.MOD:CLASS`. Each is loaded once here so mistakes surface as one-line
    errors before the run.
    """
    from attnconf import operations

    check_choice("device", device, DEVICES)
    names = list(names or ())
    targets = function_targets(functions, **flags)
    specs: list[AdapterSpec] = []
    if not names and not targets and not adapter_classes:
        for name in BUNDLED:
            if name not in OPT_IN and _bundled_class(name)(device=device).is_available()[0]:
                specs.append(AdapterSpec("bundled", name, _bundled_class(name).framework, device=device))
        return specs
    eps = {ep.name: ep for ep in entry_points()}
    for name in names:
        if name in BUNDLED:
            spec = AdapterSpec("bundled", name, _bundled_class(name).framework, device=device)
        elif name in eps:
            spec = AdapterSpec("class", eps[name].value, device=device, name=name)
        else:
            raise UsageError(f"adapter should be one of {', '.join(_known_names())}, but got {name!r}")
        specs.append(_checked(spec))
    for target in adapter_classes:
        specs.append(_checked(AdapterSpec("class", target, device=device)))
    for operation, target in targets.items():
        if not framework:
            raise UsageError(f"{operations.get(operation).plugin_flag} {target} needs --framework "
                             "(numpy, torch, jax or tensorflow), but got none")
        specs.append(_checked(AdapterSpec("function", target, framework, operation, device)))
    return specs


def _checked(spec: AdapterSpec) -> AdapterSpec:
    """Instantiate once (surfacing load errors) and refuse an adapter that cannot run here."""
    adapter = instantiate(spec)
    available, reason = adapter.is_available()
    if not available:
        raise SetupError(f"adapter {adapter.name} should be available, but it is not: {reason}")
    return dataclasses.replace(spec, framework=adapter.framework)


def instantiate(spec: AdapterSpec | dict) -> Adapter:
    """The adapter a spec describes (in this process; workers call this on the JSON form)."""
    if isinstance(spec, dict):
        spec = AdapterSpec.from_json(spec)
    if spec.kind == "bundled":
        if spec.target not in BUNDLED:
            raise UsageError(f"adapter should be one of {', '.join(_known_names())}, but got {spec.target!r}")
        return _bundled_class(spec.target)(device=spec.device)
    if spec.kind == "class":
        adapter = _construct(load_target(spec.target, "--adapter", "PKG.MOD:CLASS"), spec.device)
        if spec.name and adapter.name == Adapter.name:
            adapter.name = spec.name  # an entry point's name names an adapter that did not name itself
        return adapter
    if spec.kind == "function":
        from attnconf.adapters.function import make_function_adapter

        from attnconf.adapters.function import function_operations

        operation = spec.operation or function_operations()[0].name
        return make_function_adapter(spec.target, spec.framework, operation, spec.device)
    raise UsageError(f"adapter spec kind should be one of {', '.join(KINDS)}, but got {spec.kind!r}")
