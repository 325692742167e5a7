"""Test helper: a bundled adapter by name, or a pytest skip naming why it is unavailable here."""
import pytest

from attnconf.adapters import registry


def bundled_or_skip(name: str):
    adapter = registry.instantiate(registry.AdapterSpec("bundled", name))
    available, reason = adapter.is_available()
    if not available:
        pytest.skip(reason)
    return adapter
