"""Plug-ins whose exceptions test how an error record's message is formed (tests/test_error_messages.py)."""


def long_multiline(query, key, value, **kw):
    raise RuntimeError("  first\tline  of a long complaint " + "x" * 600 + "\nsecond line\n\nthird")


def empty_message(query, key, value, **kw):
    raise KeyError()
