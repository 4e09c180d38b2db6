"""Strict JSON: what Python's decoder tolerates but no other JSON reader agrees on.

`json` accepts `NaN` and `Infinity`, turns `1e400` into infinity, decodes integers of
any size and lets the last of two equal keys win silently. Each of these is a value
that another reader (PostgreSQL's jsonb, orjson, a JavaScript dashboard) refuses or
reads differently, so a message stored with one could not be shown, re-read or folded
the same way again. `decode_object` refuses duplicate keys (naming their path) and
marks the rest; `json_problem` then finds them in the free-form parts of a message.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from domain.errors import ContractViolation
from domain.text import segment

MAX_DEPTH = 32
"""How deeply objects and arrays may nest, counting the outermost one."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_INT64_DIGITS = len(str(INT64_MIN))

_SURROGATE = re.compile(r"[\ud800-\udfff]")


class NotJson:
    """Where the text held a number that is not interoperable JSON (`NaN`, a huge integer).

    Decoding keeps going so that every problem can be named with its path; a field
    that expects a string or an object refuses this like any other wrong type.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"NotJson({self.reason!r})"


class _DuplicateKey(Exception):
    """Raised by the fast decoder; the slow one then finds where."""


class _Duplicates(dict[str, Any]):
    """An object whose text repeated some keys (the slow decoder's marker)."""

    repeated: list[str]


def _constant(name: str) -> NotJson:
    return NotJson(f"{name} is not a JSON number")


def _integer(text: str) -> int | NotJson:
    if len(text) > _INT64_DIGITS:
        return NotJson("integer out of 64-bit range")
    return int(text)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKey
    return obj


def _marking(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _Duplicates(obj)
    seen: set[str] = set()
    marked.repeated = []
    for key, _ in pairs:
        if key in seen and key not in marked.repeated:
            marked.repeated.append(key)
        seen.add(key)
    return marked


_FAST = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_constant, parse_int=_integer)
_SLOW = json.JSONDecoder(object_pairs_hook=_marking, parse_constant=_constant, parse_int=_integer)


def decode_object(raw: str | bytes) -> dict[str, Any]:
    """The JSON object in `raw` (UTF-8 if bytes); refusals name `json` or the key's path."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ContractViolation(
                "json", f"not valid UTF-8 (byte {error.start}: {error.reason})"
            ) from None
    try:
        obj = _decode(raw)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise ContractViolation("json", f"not valid JSON ({error.msg} at {where})") from None
    except RecursionError:
        raise ContractViolation("json", "nested too deeply") from None
    if not isinstance(obj, dict):
        raise ContractViolation("json", "must be a JSON object")
    return obj


def _decode(text: str) -> Any:
    try:
        return _FAST.decode(text)
    except _DuplicateKey:
        pass
    problems = _duplicates(_SLOW.decode(text))
    raise ContractViolation.of(problems or [("json", "duplicate key")])


def _duplicates(value: Any, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, _Duplicates):
        found.extend((_join(path, key), "duplicate key") for key in value.repeated)
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_duplicates(item, _join(path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_duplicates(item, _join(path, index)))
    return found


def _join(path: str, key: str | int) -> str:
    step = segment(key)
    return f"{path}.{step}" if path else step


def json_problem(value: Any, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """The first thing in `value` that is not strict JSON, as (path, reason), or None.

    Strict JSON: objects with string keys, arrays, strings of valid Unicode, booleans,
    null, integers within signed 64 bits and finite floats; at most `max_depth` levels.
    """
    found = _visit(value, 1, max_depth)
    if found is None:
        return None
    steps, reason = found
    return ".".join(segment(step) for step in steps), reason


def _visit(value: Any, depth: int, max_depth: int) -> tuple[tuple[str | int, ...], str] | None:
    if isinstance(value, dict | list) and depth > max_depth:
        return (), f"nested deeper than {max_depth} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (), f"object keys must be strings, not {type(key).__name__}"
            if _SURROGATE.search(key):
                return (key,), "key is not valid Unicode (a lone surrogate)"
            found = _visit(item, depth + 1, max_depth)
            if found is not None:
                return (key, *found[0]), found[1]
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _visit(item, depth + 1, max_depth)
            if found is not None:
                return (index, *found[0]), found[1]
        return None
    return _scalar_problem(value)


def _scalar_problem(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return (), "not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return (), "integer out of 64-bit range"
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        if math.isnan(value):
            return (), "NaN is not a JSON number"
        return (), "number out of range (Infinity is not a JSON number)"
    if isinstance(value, NotJson):
        return (), value.reason
    return (), f"a {type(value).__name__} is not a JSON value"
