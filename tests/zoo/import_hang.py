"""A plug-in module whose import never finishes (waits for a device that never answers)."""
import time

time.sleep(10 ** 6)


def sdpa(query, key, value, **kw):  # never reached
    return query
