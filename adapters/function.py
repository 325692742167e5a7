"""Wrap a bare third-party function (`--sdpa PKG.MOD:FUNC` / `--encoding PKG.MOD:FUNC`) as an Adapter.

Which operations a function can be, its option and its signature come from the operation
registry (attnconf.operations: `plugin_flag`, `function_keywords`, `function_signature`); for the
bundled ones (arrays of the named framework, canonical layout, see docs/plugins.md):
    func(query, key, value, *, attn_mask=None, is_causal=False, scale=None, enable_gqa=False,
         window=None, softcap=None, sinks=None, alibi_slopes=None, query_offset=None,
         key_lengths=None, query_lengths=None)
    func(num_positions, dim, *, base=10000.0, offset=0[, dtype=...])
    func(x, positions, *, base=10000.0, rotary_dim=None, scaling=None)
An operation this module has no wrapper for is called generically: positional arguments as the
operation's `call` passes them, keywords whose value is None left out, and so is one the function
does not accept whose value is the Adapter method's default (the function is taken to implement
the default: ALiBi's mode="causal", T5's num_buckets=32, …); any other keyword passed when the
function accepts it and Unsupported when it does not; dtype= passed as the framework's dtype when
accepted, else the output's own dtype must be the case's (Unsupported otherwise).
A keyword the function does not accept makes the cases that need it Unsupported; unless it
declares otherwise (`attnconf.adapters.declare` or attributes) it claims the canonical spec.
Conversion and gradients come from the framework's adapter module. Must not import a framework
at module level.
"""
from __future__ import annotations

import contextlib
import importlib
import inspect

from attnconf import operations
from attnconf.adapters.base import Adapter, Capabilities, require
from attnconf.adapters.declare import declarations
from attnconf.adapters.loading import check_framework, load_callable
from attnconf.dtypes import DTYPE_NAMES
from attnconf.errors import UsageError
from attnconf.operations.rope import ROPE_TYPES
from attnconf.operations.sdpa import OPTION_NAMES as SDPA_OPTION_NAMES

# framework -> (adapter module, conversion mixin class)
CONVERSIONS = {
    "numpy": ("attnconf.adapters.numpy_reference", "NumpyArrays"),
    "torch": ("attnconf.adapters.pytorch", "TorchArrays"),
    "jax": ("attnconf.adapters.jax_nn", "JaxArrays"),
    "tensorflow": ("attnconf.adapters.keras_tf", "TfArrays"),
}


def function_operations() -> tuple:
    """The registered operations a bare function can be: those with a plug-in flag."""
    return tuple(op for op in operations.operations() if op.plugin_flag)


def option_dest(op) -> str:
    """The argparse dest of an operation's plug-in flag ("--sdpa" -> "sdpa")."""
    return op.plugin_flag.lstrip("-").replace("-", "_")


def option_help(op) -> str:
    """The help of an operation's plug-in flag: "a bare <title> function to check"."""
    return f"a bare {op.title} function to check ({op.plugin_flag} PKG.MOD:FUNC --framework F)"


def flags_text(prefix: str = "") -> str:
    """"--sdpa or --encoding" (with prefix "--attnconf-": "--attnconf-sdpa or …")."""
    flags = [prefix + op.plugin_flag.lstrip("-") if prefix else op.plugin_flag for op in function_operations()]
    return ", ".join(flags[:-1]) + (" or " if len(flags) > 1 else "") + flags[-1] if flags else ""


def parsed_targets(args, prefix: str = "") -> dict:
    """{operation name: target} for the plug-in flags given on a parsed command line (prefix:
    the attribute prefix, "attnconf_" for pytest's options)."""
    return {op.name: getattr(args, prefix + option_dest(op), None) for op in function_operations()
            if getattr(args, prefix + option_dest(op), None)}


def accepted_keywords(func, names) -> frozenset:
    """The keywords among `names` that `func` accepts (all of them if it takes **kwargs)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume they take everything
        return frozenset(names)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return frozenset(names)
    usable = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return frozenset(n for n in names if n in usable)


class FunctionAdapter(Adapter):
    """Base for the per-framework function adapters built by `make_function_adapter`."""

    func = None
    target = ""
    operation = "sdpa"
    accepted: frozenset = frozenset()
    claims: dict = {}

    def _needs(self, keyword: str, why: str):
        require(keyword in self.accepted, f"{self.target} does not accept the keyword {keyword!r} ({why})")

    def _sdpa_kwargs(self, query, key, attn_mask, is_causal, causal_alignment, scale, enable_gqa,
                     options=None):
        require(self.operation in ("sdpa", "sdpa_lse"), f"{self.target} is a {self.operation} function, not sdpa")
        kwargs = {}
        options = {k: v for k, v in (options or {}).items() if v is not None}
        if attn_mask is not None:
            self._needs("attn_mask", "the case has an attention mask")
            kwargs["attn_mask"] = attn_mask
        # the function's positions follow its declared alignment (sdpa.opt.positions): they agree
        # with the case's when L == S and no lengths shift them, or when query_offset places them
        if is_causal:
            self._needs("is_causal", "the case is causal")
        positioned = is_causal or any(n in options for n in ("window", "alibi_slopes"))
        if positioned and "query_offset" not in options:
            L, S = query.shape[-2], key.shape[-2]
            declared = self.claims.get("causal_alignment", "top_left")
            same = L == S and not any(n in options for n in ("key_lengths", "query_lengths"))
            require(same or causal_alignment == declared,
                    f"{self.target} declares causal_alignment={declared!r}, the case needs {causal_alignment!r}")
        if is_causal:
            kwargs["is_causal"] = True
        for name, value in options.items():  # sdpa.opt.*: a keyword it lacks makes the case unsupported
            self._needs(name, f"the case sets the sdpa option {name}")
            kwargs[name] = value
        if scale is not None:
            self._needs("scale", "the case sets an explicit scale")
            kwargs["scale"] = scale
        if enable_gqa:
            self._needs("enable_gqa", "the case has fewer key/value heads than query heads")
            kwargs["enable_gqa"] = True
        return kwargs

    def sdpa(self, query, key, value, *, attn_mask=None, is_causal=False,
             causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        kwargs = self._sdpa_kwargs(query, key, attn_mask, is_causal, causal_alignment, scale, enable_gqa,
                                   options)
        with self._context(query.dtype):
            return type(self).func(query, key, value, **kwargs)

    def sdpa_lse(self, query, key, value, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        """sdpa's keywords, as sdpa's wrapper passes them; the function returns (output, lse)."""
        kwargs = self._sdpa_kwargs(query, key, attn_mask, is_causal, causal_alignment, scale, enable_gqa,
                                   options)
        with self._context(query.dtype):
            return type(self).func(query, key, value, **kwargs)

    def _context(self, dtype):
        # JAX needs x64 switched on (thread-locally) while user code touches float64 arrays
        make = getattr(self, "compute_context", None)
        return make(dtype) if make else contextlib.nullcontext()

    def sdpa_vjp(self, query, key, value, grad_output, *, attn_mask=None, is_causal=False,
                 causal_alignment="top_left", scale=None, enable_gqa=False, **options):
        """The framework's autodiff of the function, with the sdpa options it accepts (sdpa.opt.grad);
        with sinks, also with respect to them: (dq, dk, dv, dsinks)."""
        require(self.capabilities.gradients, f"{self.target}: gradients need an autodiff framework "
                f"(torch, jax, tensorflow), not {self.framework}, or were declared off")
        kwargs = self._sdpa_kwargs(query, key, attn_mask, is_causal, causal_alignment, scale, enable_gqa,
                                   options)
        module = importlib.import_module(CONVERSIONS[self.framework][0])
        func = type(self).func
        sinks = kwargs.pop("sinks", None)
        if sinks is None:
            return module.vjp(lambda q, k, v: func(q, k, v, **kwargs), (query, key, value), grad_output)
        return module.vjp(lambda q, k, v, s: func(q, k, v, sinks=s, **kwargs), (query, key, value, sinks),
                          grad_output)

    def sinusoidal_encoding(self, num_positions, dim, *, base=10000.0, offset=0,
                            layout="interleaved", frequencies="vaswani", dtype="float32"):
        require(self.operation == "sinusoidal_encoding", f"{self.target} is an sdpa function, not an encoding")
        for claim, asked in (("layout", layout), ("frequencies", frequencies)):
            declared = self.claims.get(claim, "interleaved" if claim == "layout" else "vaswani")
            require(asked == declared, f"{self.target} declares {claim}={declared!r}, the case needs {asked!r}")
        kwargs = {}
        if base != 10000.0:
            self._needs("base", "the case uses a base other than 10000")
            kwargs["base"] = base
        if offset != 0:
            self._needs("offset", "the case starts at a nonzero offset")
            kwargs["offset"] = offset
        if "dtype" in self.accepted:
            module = importlib.import_module(CONVERSIONS[self.framework][0])
            kwargs["dtype"] = module.native_dtype(dtype)
            with self._context(dtype):
                return type(self).func(num_positions, dim, **kwargs)
        out = self._dtypeless_call(num_positions, dim, kwargs, dtype)
        # without dtype= the function's own output dtype is the precision it can be tested at
        got = str(self.to_numpy(out).dtype)
        require(got == dtype, f"{self.target} takes no dtype= keyword and returns {got}, the case needs {dtype}")
        return out

    def rotary_embedding(self, x, positions, *, base=10000.0, rotary_dim=None, scaling=None,
                         layout="interleaved"):
        require(self.operation == "rotary_embedding", f"{self.target} is not a rotary_embedding function")
        # the pairing is a claim, never a keyword: a function rotates one layout (rope.layout.*)
        declared = self.claims.get("rope_layout", "interleaved")
        require(layout == declared, f"{self.target} declares rope_layout={declared!r}, the case needs {layout!r}")
        kwargs = {}
        if base != 10000.0:
            self._needs("base", "the case uses a base other than 10000")
            kwargs["base"] = base
        if rotary_dim is not None and rotary_dim != x.shape[-1]:
            self._needs("rotary_dim", "the case rotates only the first rotary_dim channels")
            kwargs["rotary_dim"] = rotary_dim
        if scaling is not None:
            self._needs("scaling", f"the case uses {scaling.get('rope_type')!r} scaling")
            kind = scaling.get("rope_type")
            require(kind in self.capabilities.rope_scaling,
                    f"{self.target} declares rope_scaling={self.capabilities.rope_scaling!r}, the case needs {kind!r}")
            kwargs["scaling"] = dict(scaling)
        with self._context(x.dtype):
            return type(self).func(x, positions, **kwargs)

    def _generic_call(self, *args, **keywords):
        """An operation without a wrapper here: see the module docstring."""
        defaults = _method_defaults(self.operation)
        kwargs = {}
        for name, value in keywords.items():
            if value is None or name not in self.accepted and (
                    name == "dtype" or (name in defaults and _same(value, defaults[name]))):
                continue   # the documented default, or dtype= checked on the output below
            self._needs(name, f"the case sets {name}={value!r}")
            if name == "dtype":
                value = importlib.import_module(CONVERSIONS[self.framework][0]).native_dtype(value)
            kwargs[name] = value
        dtype = keywords.get("dtype") or next((a.dtype for a in args if hasattr(a, "dtype")), None)
        with self._context(dtype):
            out = type(self).func(*args, **kwargs)
        if keywords.get("dtype") and "dtype" not in self.accepted:
            # without dtype= the function's own output dtype is the precision it can be tested at
            got = str(self.to_numpy(out).dtype)
            require(got == keywords["dtype"], f"{self.target} takes no dtype= keyword and returns {got}, "
                    f"the case needs {keywords['dtype']}")
        return out

    def _dtypeless_call(self, num_positions, dim, kwargs, dtype):
        """The function's table for a case, calling it once for all the case's dtypes.

        Without dtype= every dtype of a case is the same call (an encoding plug-in spent 4 x 28 s
        on one case, three of them to learn its one output dtype), and the runner asks for a
        case's dtypes one after another on one instance. So the last call's outcome (table or
        exception) is kept and serves each *other* dtype once; a dtype asked for again
        (determinism, benchmarks) is a new call. Only the last call is kept: memory stays
        bounded. A dtype whose compute context is not a no-op (JAX's x64 for float64) is a call
        of its own: the same function may return another dtype there.
        """
        context = self._context(dtype)
        own = None if isinstance(context, contextlib.nullcontext) else dtype
        key = (num_positions, dim, tuple(sorted(kwargs.items())), own)
        last = getattr(self, "_last_call", None)
        if last is not None and last["key"] == key and dtype not in last["served"]:
            last["served"].add(dtype)
        else:
            try:
                with context:
                    outcome = (type(self).func(num_positions, dim, **kwargs), None)
            except Exception as exc:  # the same call for the other dtypes raises the same
                outcome = (None, exc)
            last = self._last_call = {"key": key, "outcome": outcome, "served": {dtype}}
        value, error = last["outcome"]
        if error is not None:
            raise error
        return value


def _method_defaults(operation: str) -> dict:
    """The keyword defaults of the Adapter method of `operation` ({} for a plug-in's own)."""
    method = getattr(Adapter, operations.get(operation).adapter_method or "", None)
    if method is None:
        return {}
    return {p.name: p.default for p in inspect.signature(method).parameters.values()
            if p.default is not p.empty}


def _same(value, default) -> bool:
    # 8 == 8.0 is the same default; True == 1 is not
    return isinstance(value, bool) == isinstance(default, bool) and value == default


def make_function_adapter(target: str, framework: str, operation: str = "sdpa", device: str = "cpu"):
    """An Adapter instance around the function `target` (`PKG.MOD:FUNC`) for `framework`.

    UsageError/SetupError (one line) for a malformed target, missing module/attribute, something
    not callable, an unknown or uninstalled framework, or a module that raises at import.
    """
    candidates = {op.name: op for op in function_operations()}
    if operation not in candidates:
        raise UsageError(f"operation should be one of {', '.join(map(repr, candidates))}, but got {operation!r}")
    op = candidates[operation]
    check_framework(framework)
    func = load_callable(target, op.plugin_flag)
    claims = declarations(func)
    mixin = getattr(importlib.import_module(CONVERSIONS[framework][0]), CONVERSIONS[framework][1])
    accepted = accepted_keywords(func, op.function_keywords)
    default_kinds = ("bool", "float") if "attn_mask" in accepted else ()
    gradient = (op.function_gradient,) if op.function_gradient else ()
    capabilities = Capabilities(
        operations=(operation,) + gradient,
        dtypes=tuple(claims.get("dtypes", DTYPE_NAMES)),
        mask_kinds=tuple(claims.get("mask_kinds", default_kinds)),
        causal_alignments=(claims.get("causal_alignment", "top_left"),) if "is_causal" in accepted else (),
        mask_and_causal=claims.get("mask_and_causal", True) and {"attn_mask", "is_causal"} <= accepted,
        gqa="enable_gqa" in accepted,
        explicit_scale="scale" in accepted,
        fully_masked=claims.get("fully_masked", "zero"),
        gradients=claims.get("gradients", framework != "numpy") and bool(gradient),
        encoding_layouts=(claims.get("layout", "interleaved"),),
        encoding_frequencies=(claims.get("frequencies", "vaswani"),),
        encoding_offset="offset" in accepted,
        encoding_base="base" in accepted,
        deterministic=claims.get("deterministic", True),
        rope_layouts=(claims.get("rope_layout", "interleaved"),),
        rope_scaling=tuple(claims.get("rope_scaling", ROPE_TYPES)) if "scaling" in accepted else (),
        sdpa_options=tuple(n for n in SDPA_OPTION_NAMES if n in accepted) if operation in ("sdpa", "sdpa_lse", "sdpa_paged") else (),
    )
    methods = {}
    if operation == "sdpa_varlen":   # the packed options it takes (attnconf.operations.sdpa_varlen)
        from attnconf.operations.sdpa_varlen import OPTION_NAMES as VARLEN_OPTIONS

        methods["varlen_options"] = tuple(n for n in VARLEN_OPTIONS if n in accepted)
    if op.adapter_method and (getattr(FunctionAdapter, op.adapter_method, None)
                              is getattr(Adapter, op.adapter_method, None)):
        methods[op.adapter_method] = FunctionAdapter._generic_call   # no wrapper of its own here
    cls = type(f"{framework.capitalize()}FunctionAdapter", (mixin, FunctionAdapter), dict(
        name=claims.get("name", target), framework=framework, target=target,
        operation=operation, accepted=accepted, claims=claims, capabilities=capabilities,
        description=claims.get("description", f"{operation} function {target} ({framework})"),
        **methods,
    ))
    cls.func = func  # plain attribute read through type(self).func, so no method binding happens
    return cls(device=device)
