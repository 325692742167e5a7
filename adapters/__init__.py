"""Adapters: one class per implementation under test, behind the protocol in `base`."""
