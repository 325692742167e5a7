"""A plug-in module whose import crashes the process (a native extension that segfaults while
it initialises)."""
import ctypes

ctypes.string_at(0)


def sdpa(query, key, value, **kw):  # never reached
    return query
