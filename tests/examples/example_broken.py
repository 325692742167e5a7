"""A plug-in module that raises at import: attnconf must report it in one line."""
raise RuntimeError("example_broken cannot be imported (on purpose)")


def sdpa(query, key, value):  # pragma: no cover - never reached
    return query
