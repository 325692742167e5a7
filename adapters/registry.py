"""Which adapters exist and how to build one: bundled, entry points, `--adapter PKG.MOD:CLASS`,
and bare functions (`--sdpa` / `--encoding`: each registered operation's `plugin_flag`).

An `AdapterSpec` is plain JSON so a worker process can rebuild the adapter with `instantiate`.
Importing this module imports no framework, and neither do `discover()`, `resolve()` and
`not_run()` for bundled adapters on the CPU: availability comes from package metadata
(Adapter.quick_status: importlib.util.find_spec, importlib.metadata); the framework is imported
where the adapter runs (its worker), and a failure there is that adapter's error.
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
# Bundled but run only when named (`--adapter NAME`).
# torch-flex: eager FlexAttention costs ~40 ms a call (vmapped score_mod/mask_mod), ~400 s a run.
# (torch.compile'd FlexAttention, ~30 s per compile, is not bundled:
# --adapter attnconf.adapters.torch_flex:TorchFlexCompiledAdapter.)
# keras-hub-*-jax: Keras fixes its backend at first import, and the default run's Keras rows use
# TensorFlow; named, they run in the JAX worker (tox env keras-hub-jax).
# hf-eager-sinks is in the default run since the HF rows share one worker: measured
# (`attnconf run --adapter hf-eager` vs the same with hf-eager-sinks and hf-sdpa added,
# /usr/bin/time, load ~10) 10.8 vs 14.2 CPU-s in all, ~1.7 CPU-s each, where each had cost ~12
# with a transformers import of its own. hf-sdpa stays opt-in: `attnconf calibrate` (8 seeds)
# finds a divergence no expectation documents yet (sdpa-window seed 7, float64: a row with
# visible keys gives 0), and the default run and calibrate judge the same adapters.
# torch-flex-varlen (eager FlexAttention over the packed batch) and jax-varlen (XLA compiles per
# padded shape) cost ~90 s and ~80 s of wall time for their 70 records here; torch-nested ~4 CPU-s.
# torch-flex-paged: eager PagedAttention costs ~1 s a call here (create_block_mask and the vmapped
# mods over the whole page pool), ~230 s for its paged records alone.
OPT_IN = ("torch-flex", "hf-sdpa", "keras-hub-rope-jax", "keras-hub-alibi-jax", "torch-flex-varlen", "jax-varlen",
          "jax-pallas-segments", "torch-flex-paged")
OPT_IN_REASONS = {
    "torch-flex": "opt-in: eager FlexAttention takes ~40 ms a call, ~400 s a run",
    "hf-sdpa": "opt-in: calibration's random window cases find a divergence no expectation documents yet "
               "(float64 rows with visible keys give 0)",
    "keras-hub-rope-jax": "opt-in: keras-hub on the JAX backend (Keras fixes its backend at first import; "
                          "the default run's Keras rows use TensorFlow)",
    "keras-hub-alibi-jax": "opt-in: keras-hub on the JAX backend (Keras fixes its backend at first import; "
                           "the default run's Keras rows use TensorFlow)",
    "torch-flex-varlen": "opt-in: eager FlexAttention over the packed batch, ~90 s for its records",
    "jax-varlen": "opt-in: XLA compiles once per padded shape, ~80 s for its records",
    "jax-pallas-segments": "opt-in: the Pallas GPU flash kernel in interpret mode, ~3 s a shape",
    "torch-flex-paged": "opt-in: eager PagedAttention takes ~1 s a call, ~230 s for its records",
}
# What installs an adapter's missing module: the pyproject extra, or a tox env that installs it.
EXTRA_OF_MODULE = {"torch": "torch", "jax": "jax", "jaxlib": "jax", "tensorflow": "tensorflow",
                   "keras": "tensorflow", "transformers": "hf", "onnx": "onnx", "onnxruntime": "onnx"}
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
    and every `attnconf.adapters` entry point; bundled rows say whether the default run includes
    them ("default": false for OPT_IN, with "opt_in" the reason)."""
    rows = []
    for name in BUNDLED:
        cls = _bundled_class(name)
        row = cls(device=device).describe()
        row["source"] = "bundled"
        row["default"] = name not in OPT_IN
        row["opt_in"] = OPT_IN_REASONS.get(name, "")
        rows.append(row)
    rows.extend(_entry_point_row(ep, device or "cpu") for ep in entry_points())
    return rows


def _known_names() -> list[str]:
    return list(BUNDLED) + [ep.name for ep in entry_points()]


def unknown_adapter(name: str) -> UsageError:
    """'adapter should be one of …, but got …', with a "did you mean" when one name is close."""
    import difflib

    known = _known_names()
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UsageError(f"adapter should be one of {', '.join(known)}, but got {name!r}{hint}")


def default_names(device: str = "cpu") -> list[str]:
    """The bundled adapters a run without --adapter checks: all but OPT_IN, those available here
    (package metadata; no framework import on the CPU)."""
    return [name for name in BUNDLED
            if name not in OPT_IN and _bundled_class(name)(device=device).quick_status()[0]]


def install_command(name: str) -> str:
    """The command that makes bundled adapter `name` runnable here and runs it."""
    cls = _bundled_class(name)
    missing = [m for m in cls.modules if not _module_found(m)]
    if "keras_hub" in missing:   # keras-hub's own requirements pull a second TensorFlow: tox installs it --no-deps
        return "tox -e keras-hub-jax" if "jax" in cls.modules else "tox -e keras-hub"
    extras = sorted({EXTRA_OF_MODULE.get(m, m) for m in missing})
    run = f"attnconf run --adapter {name}"
    if missing:
        return f"python3 -m pip install -c constraints.txt \".[{','.join(extras)}]\" && {run}"
    return run


def not_run(specs, device: str = "cpu", *, default_run: bool = True) -> list[dict]:
    """{"adapter", "reason", "command"} for every bundled adapter `specs` leave out: opt-in, not
    installed, GPU-only (or no GPU), or, when adapters were named, not named."""
    ran = {s.target for s in specs if getattr(s, "kind", "") == "bundled"}
    rows = []
    for name in BUNDLED:
        if name in ran:
            continue
        cls = _bundled_class(name)
        adapter = cls(device=device)
        available, reason = adapter.quick_status()
        if not available:
            command = install_command(name)
            if not cls.installed()[0]:
                reason = f"not installed: {reason}"
            elif cls.installed()[0] and command.endswith(name):   # installed, yet not here: a device
                gpu = "cuda" if cls.framework == "torch" else "gpu"
                command = f"attnconf run --adapter {name} --device {gpu}" if device == "cpu" else command
        elif name in OPT_IN and default_run:
            reason, command = OPT_IN_REASONS[name], f"attnconf run --adapter {name}"
        elif not default_run:
            reason, command = "not named with --adapter", f"attnconf run --adapter {name}"
        else:
            continue
        rows.append({"adapter": name, "reason": reason, "command": command})
    return rows


def _module_found(module: str) -> bool:
    from attnconf.adapters.base import module_found

    return module_found(module)


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
            isolated=True, **flags) -> list[AdapterSpec]:
    """The adapters a run asked for. No names, functions or classes: every available bundled adapter
    but the OPT_IN ones (default_names).

    isolated: the adapters run in worker processes, so a bundled adapter's availability comes from
    package metadata here, without importing its framework (False: in this process, imported).

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
        for name in default_names(device):
            if isolated or _bundled_class(name)(device=device).is_available()[0]:
                specs.append(AdapterSpec("bundled", name, _bundled_class(name).framework, device=device))
        return specs
    eps = {ep.name: ep for ep in entry_points()}
    for name in names:
        if name in BUNDLED:
            spec = AdapterSpec("bundled", name, _bundled_class(name).framework, device=device)
            specs.append(_checked(spec, quick=isolated))
            continue
        if name in eps:
            spec = AdapterSpec("class", eps[name].value, device=device, name=name)
        else:
            raise unknown_adapter(name)
        specs.append(_checked(spec))
    for target in adapter_classes:
        specs.append(_checked(AdapterSpec("class", target, device=device)))
    for operation, target in targets.items():
        if not framework:
            raise UsageError(f"{operations.get(operation).plugin_flag} {target} needs --framework "
                             "(numpy, torch, jax or tensorflow), but got none")
        specs.append(_checked(AdapterSpec("function", target, framework, operation, device)))
    return specs


def _checked(spec: AdapterSpec, *, quick: bool = False) -> AdapterSpec:
    """Instantiate once (surfacing load errors) and refuse an adapter that cannot run here
    (quick: by package metadata, Adapter.quick_status, without importing its framework)."""
    adapter = instantiate(spec)
    available, reason = adapter.quick_status() if quick else adapter.is_available()
    if not available:
        raise SetupError(f"adapter {adapter.name} should be available, but it is not: {reason}")
    return dataclasses.replace(spec, framework=adapter.framework)


def instantiate(spec: AdapterSpec | dict) -> Adapter:
    """The adapter a spec describes (in this process; workers call this on the JSON form)."""
    if isinstance(spec, dict):
        spec = AdapterSpec.from_json(spec)
    if spec.kind == "bundled":
        if spec.target not in BUNDLED:
            raise unknown_adapter(spec.target)
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
