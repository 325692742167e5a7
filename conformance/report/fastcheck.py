"""A fast yes for records that match the results schema, compiled from the schema itself.

    ok = compile_schema(record_schema, defs)   # None when the schema uses a keyword not handled here
    ok(record)   # True: valid; False: ask jsonschema (model.record_problem), which says why

For what: `attnconf report` checks every record against spec/results.schema.json; jsonschema
takes ~0.1–2 ms a record, minutes for a merged matrix of 200 000 records. This compiles the
subset of JSON Schema 2020-12 the record definition uses (type, enum, const, required,
properties, additionalProperties, items, $ref into $defs, oneOf, anyOf, allOf, pattern,
minimum, maximum; annotations ignored) into plain Python checks. It never says yes to a value
jsonschema rejects for a handled keyword; for any other keyword it declines to compile, and
every record goes to jsonschema as before.
Must not: replace jsonschema's messages (a False is re-checked there) or read files.
"""
from __future__ import annotations

import re
from typing import Any, Callable

Check = Callable[[Any], bool]

_ANNOTATIONS = {"description", "title", "$comment", "$schema", "$id", "examples", "default", "format",
                "deprecated", "readOnly", "writeOnly"}


class _Unsupported(Exception):
    pass


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    raise _Unsupported(name)


_PY_TYPES = {"object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),)}


def _type_check(names: list[str]) -> Check:
    """isinstance against the plain types, numbers apart (a bool is not a number; 1.0 is an integer)."""
    for n in names:
        _is_type(None, n)   # an unknown type name raises here
    plain = tuple(t for n in names for t in _PY_TYPES.get(n, ()))
    number, integer = "number" in names, "integer" in names

    def check(v):
        if isinstance(v, plain):
            return True
        if type(v) is bool:
            return False
        if number and isinstance(v, (int, float)):
            return True
        return integer and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))
    return check


def _equal(a: Any, b: Any) -> bool:
    """JSON equality (1 == 1.0, but True != 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def compile_schema(node: Any, defs: dict) -> Check | None:
    """A check for `node` (references resolve in `defs`), or None when a keyword is not handled."""
    try:
        return _compile(node, defs, {})
    except _Unsupported:
        return None


def _compile(node: Any, defs: dict, cache: dict) -> Check:
    if node is True:
        return lambda v: True
    if node is False:
        return lambda v: False
    if not isinstance(node, dict):
        raise _Unsupported(repr(node))
    checks: list[Check] = []
    for key, arg in node.items():
        if key in _ANNOTATIONS or key == "$defs":
            continue
        if key == "$ref":
            if not (isinstance(arg, str) and arg.startswith("#/$defs/") and arg[8:] in defs):
                raise _Unsupported(arg)
            name = arg[8:]
            if name not in cache:
                cache[name] = None   # a recursive definition: not handled
                cache[name] = _compile(defs[name], defs, cache)
            target = cache[name]
            if target is None:
                raise _Unsupported(arg)
            checks.append(target)
        elif key == "type":
            checks.append(_type_check([arg] if isinstance(arg, str) else list(arg)))
        elif key == "enum":
            if all(isinstance(e, str) for e in arg):   # the common case: a set of names
                names = frozenset(arg)
                checks.append(lambda v, names=names: type(v) is str and v in names)
            else:
                checks.append(lambda v, arg=arg: any(_equal(v, e) for e in arg))
        elif key == "const":
            checks.append(lambda v, arg=arg: _equal(v, arg))
        elif key == "required":
            checks.append(lambda v, arg=tuple(arg): not isinstance(v, dict) or all(k in v for k in arg))
        elif key == "properties":
            props = {k: _compile(s, defs, cache) for k, s in arg.items()}

            def check_props(v, props=props):
                if type(v) is not dict:
                    return True
                for k, x in v.items():
                    c = props.get(k)
                    if c is not None and not c(x):
                        return False
                return True
            checks.append(check_props)
        elif key == "additionalProperties":
            known = set(node.get("properties", {}))
            if node.get("patternProperties"):
                raise _Unsupported(key)
            extra = _compile(arg, defs, cache)
            checks.append(lambda v, extra=extra, known=known: not isinstance(v, dict) or
                          all(extra(x) for k, x in v.items() if k not in known))
        elif key == "items":
            item = _compile(arg, defs, cache)
            checks.append(lambda v, item=item: not isinstance(v, list) or all(item(x) for x in v))
        elif key in ("oneOf", "anyOf", "allOf"):
            subs = [_compile(s, defs, cache) for s in arg]
            if key == "oneOf":
                checks.append(lambda v, subs=subs: sum(1 for s in subs if s(v)) == 1)
            elif key == "anyOf":
                checks.append(lambda v, subs=subs: any(s(v) for s in subs))
            else:
                checks.append(lambda v, subs=subs: all(s(v) for s in subs))
        elif key == "pattern":
            rx = re.compile(arg)
            checks.append(lambda v, rx=rx: not isinstance(v, str) or rx.search(v) is not None)
        elif key in ("minimum", "maximum"):
            sign = 1 if key == "minimum" else -1
            checks.append(lambda v, arg=arg, sign=sign: not _is_type(v, "number") or sign * (v - arg) >= 0)
        else:
            raise _Unsupported(key)
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]

    def check_all(v, checks=tuple(checks)):
        for c in checks:
            if not c(v):
                return False
        return True
    return check_all
