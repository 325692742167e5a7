"""What the keras-hub layer adapters with a TensorFlow and a JAX row share (RotaryEmbedding,
AlibiBias): the backend check, availability and version. Lazy: imports nothing at module level."""
from __future__ import annotations

import sys

from attnconf.adapters.keras_tf import import_keras


class KerasHubLayer:
    """Mixin before the conversion mixin and Adapter; a row sets `backend`."""

    backend = ""

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        if not available:
            return available, reason
        if "keras" in sys.modules and sys.modules["keras"].backend.backend() != cls.backend:
            # keras cannot switch backend within a process: name the adapter alone (`--adapter`) so that
            # this process's first keras import is ours
            return False, (f"keras was imported with the {sys.modules['keras'].backend.backend()!r} backend "
                           f"before {cls.name} (it needs {cls.backend!r}; keras fixes its backend at first import)")
        try:
            import_keras(cls.backend)
            import keras_hub  # noqa: F401
        except Exception as exc:
            return False, (f"keras_hub is not importable ({type(exc).__name__}: {exc}); install it with "
                           "`pip install --no-deps keras-hub` to avoid a second TensorFlow (docs/plugins.md)")
        return True, ""
