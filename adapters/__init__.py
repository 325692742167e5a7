"""Adapters: one class per implementation under test, behind the protocol in `base`.

`declare` is the decorator a bare plug-in function uses to state its claims (see docs/plugins.md).
Must not import any framework.
"""
from attnconf.adapters.declare import declare

__all__ = ["declare"]
