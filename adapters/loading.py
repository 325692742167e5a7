"""Loading `PKG.MOD:ATTR` plug-in targets, with one-line errors that say what to fix.

Used by the registry (`--adapter PKG.MOD:CLASS`, entry points) and the function wrapper
(`--sdpa/--encoding PKG.MOD:FUNC`). Must not import any framework.
"""
from __future__ import annotations

import importlib
import os
import re
import sys

from attnconf.errors import SetupError, UsageError

_TARGET = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")

# framework name -> the module whose import proves it is installed
FRAMEWORK_MODULES = {"numpy": "numpy", "torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}


def split_target(target: str, option: str, what: str = "PKG.MOD:FUNC") -> tuple[str, str]:
    if not isinstance(target, str) or not _TARGET.match(target):
        raise UsageError(f"{option} should be {what} (a module path, a colon, an attribute), but got {target!r}")
    module, attr = target.split(":")
    return module, attr


def import_module(module: str, option: str, target: str):
    """Import `module` (the current directory is searched too, as `python -m` would)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # appended, so an installed package of the same name still wins
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module == missing or module.startswith(missing + "."):
            raise UsageError(f"{option} {target}: module {module!r} should be importable, but it was "
                             f"not found ({exc})") from None
        raise SetupError(f"{option} {target}: importing {module!r} raised ModuleNotFoundError: {exc}") from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise SetupError(f"{option} {target}: importing {module!r} raised {type(exc).__name__}: {first}") from None


def load_target(target: str, option: str, what: str = "PKG.MOD:FUNC"):
    """The object named by `PKG.MOD:ATTR` (dotted attributes allowed, e.g. `mod:Class.method`)."""
    module_name, attr = split_target(target, option, what)
    obj = import_module(module_name, option, target)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{option} {target}: module {module_name!r} should have an attribute "
                             f"{attr!r}, but it has none")
        obj = getattr(obj, part)
    return obj


def load_callable(target: str, option: str, what: str = "PKG.MOD:FUNC"):
    obj = load_target(target, option, what)
    if not callable(obj):
        raise UsageError(f"{option} {target} should be callable, but got {type(obj).__name__}")
    return obj


def check_framework(framework, option: str = "--framework") -> str:
    """The framework name, checked to be known and importable (SetupError names the failure)."""
    if framework not in FRAMEWORK_MODULES:
        raise UsageError(f"{option} should be one of " + ", ".join(repr(f) for f in FRAMEWORK_MODULES)
                         + f", but got {framework!r}")
    try:
        importlib.import_module(FRAMEWORK_MODULES[framework])
    except Exception as exc:
        raise SetupError(f"{option} {framework} should be installed, but importing "
                         f"{FRAMEWORK_MODULES[framework]!r} failed: {type(exc).__name__}: {exc}") from None
    return framework
