"""What every HF transformers adapter shares: torch arrays, availability (transformers and the
modules the adapter calls import); its version string comes from package metadata (`modules`). Lazy: imports nothing at module level."""
from __future__ import annotations

import importlib

from attnconf.adapters.pytorch import TorchArrays


class HfTransformers(TorchArrays):
    """Mixin before Adapter: `class X(HfTransformers, Adapter)` with `hf_modules` set."""

    hf_modules: tuple[str, ...] = ()     # the transformers modules the adapter calls
    modules = ("torch", "transformers")

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        if not available:
            return available, reason
        try:
            for module in cls.hf_modules:
                importlib.import_module(module)
            cls._hf_check()
        except Exception as exc:
            return False, (f"transformers is not importable ({type(exc).__name__}: {exc}); "
                           "install it with `pip install -e .[hf]`")
        return True, ""

    @classmethod
    def _hf_check(cls) -> None:
        """A further check that the code the adapter calls exists (raises when it does not)."""
