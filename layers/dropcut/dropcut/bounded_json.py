"""JSON from outside (manifests, presets, callback bodies, provider answers), parsed within
bounds: a size, a nesting depth, number lengths, and finite numbers only. Whatever the input,
the only error is BoundedJsonError (a ValueError), never RecursionError or OverflowError."""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting accepted; every document dropcut reads is a few levels deep.
DEFAULT_MAX_DEPTH = 32
#: Longest integer (in digits) accepted: well past any count, size or credit figure.
MAX_INT_DIGITS = 24


class BoundedJsonError(ValueError):
    """The text is not JSON, or is JSON past one of the bounds; the message says which."""


def parse_bounded_json(
    data: bytes | str, *, max_bytes: int, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Parse `data` (UTF-8 bytes or text, at most `max_bytes` bytes, nested at most `max_depth`
    levels) into Python values. Raises BoundedJsonError, with a sentence for a person."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise BoundedJsonError(f"it is {len(raw)} bytes, over the {max_bytes}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BoundedJsonError(f"it is not UTF-8 text ({exc.reason})") from None
    depth = _max_depth(text)
    if depth > max_depth:
        raise BoundedJsonError(f"it nests {depth} levels deep, over the limit of {max_depth}")
    try:
        return json.loads(
            text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except BoundedJsonError:
        raise
    except (ValueError, RecursionError) as exc:
        raise BoundedJsonError(f"it is not valid JSON ({exc})") from None


def _max_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise BoundedJsonError(f"it has a {len(digits)}-digit number")
    return int(digits)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BoundedJsonError(f"it has a number out of range ({text[:20]})")
    return value


def _no_constant(name: str) -> float:
    raise BoundedJsonError(f"it has {name}, which is not JSON")
