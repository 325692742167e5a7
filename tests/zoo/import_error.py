"""A plug-in module that fails at import time (a missing native library, say)."""
raise ImportError("libattention_kernel.so: cannot open shared object file: No such file or directory")


def sdpa(query, key, value, **kw):  # never reached
    return query
