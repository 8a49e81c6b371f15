"""Limits on JSON values wherever bytes enter (PROTOCOL.md §1, "Value limits").

A JSON text can be legal and still kill a receiver written in Python: nesting
deep enough exhausts the recursion limit (in ``json.loads`` or in any later
recursive walk), an integer of more than 4300 digits makes ``int()`` raise, and
``NaN``/``Infinity`` are accepted by ``json.loads`` but make every later
``json.dumps(allow_nan=False)`` (``--json``, the store) fail. So every decoder
that takes bytes from a peer goes through ``loads`` here, and every writer of
values that came from elsewhere can call ``check`` first.

The limits are protocol-wide constants, the same for both sides.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

#: Containers (objects/arrays) nested deeper than this are refused.
MAX_DEPTH = 128
#: Integer literals with more digits than this are refused (2**63 has 19; Python's own cap is 4300).
MAX_INT_DIGITS = 64
_INT_BOUND = 10**MAX_INT_DIGITS
#: A lone surrogate is legal as a JSON escape but not Unicode: no UTF-8 encoder (and many
#: JSON libraries) accept it, so values holding one are refused like the others.
_SURROGATE = re.compile("[\ud800-\udfff]")


class ValueRejected(ValueError):
    """A JSON value outside the limits; ``str()`` is one readable line."""


class _Bad:
    """Placeholder the hooks return, so decoding finishes and the walk can say where."""

    __slots__ = ("reason",)
    made = 0  # how many ever: a decode that made none needs no walk to find them

    def __init__(self, reason: str):
        self.reason = reason
        _Bad.made += 1


def _parse_int(text: str) -> Any:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_INT_DIGITS:
        return _Bad(f"an integer of {digits} digits (limit {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> Any:
    value = float(text)
    if not math.isfinite(value):
        return _Bad(f"the number {text[:40]} is out of range")
    return value


def _parse_constant(name: str) -> Any:
    return _Bad(f"{name} is not a JSON number")


#: Keyword arguments for ``json.loads``: over-limit numbers decode to placeholders that ``check`` reports.
HOOKS: dict[str, Any] = {"parse_int": _parse_int, "parse_float": _parse_float, "parse_constant": _parse_constant}
#: A decoder with the hooks, built once (``json.loads(text, **HOOKS)`` builds one per call).
DECODER = json.JSONDecoder(**HOOKS)


def placeholders_made() -> int:
    """A counter of the hooks' placeholders: read it before decoding with ``DECODER``."""
    return _Bad.made


def needs_check(raw: bytes | bytearray, made_before: int) -> bool:
    """Whether ``check`` could find anything in the value just decoded from ``raw`` by ``DECODER``.

    Only if the hooks made a placeholder, or the bytes could nest MAX_DEPTH deep (as many
    brackets) or hold an escaped surrogate (``\\u``; raw surrogate bytes are not UTF-8 and
    fail decoding). Two C-speed scans, instead of a walk of every value (~15% of a request).
    """
    return _Bad.made != made_before or raw.count(b"[") + raw.count(b"{") >= MAX_DEPTH or b"\\u" in raw


def loads(text: str | bytes) -> Any:
    """``json.loads`` that raises ``ValueRejected`` for a value outside the limits.

    Raises ``json.JSONDecodeError`` / ``UnicodeDecodeError`` as ``json.loads`` does
    for text that is not JSON at all.
    """
    try:
        value = json.loads(text, **HOOKS)
    except RecursionError:
        raise ValueRejected(f"nesting deeper than {MAX_DEPTH} levels") from None
    check(value)
    return value


def check(value: Any) -> None:
    """Raise ``ValueRejected`` if ``value`` nests deeper than MAX_DEPTH, holds a
    non-finite float, an over-long integer, a lone surrogate or a non-JSON type.
    Iterative: any depth is safe.

    It runs on every request the host sends and every result it stores, so the
    exact JSON types take a fast path (one ``type()`` test each; an ASCII string
    cannot hold a surrogate); anything else, subclasses included, is judged by
    ``_check_other`` with the same rules (numbers by the one ``_check_number``).
    Problems are found in the same order.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is str:
            if not item.isascii():
                _check_str(item)
        elif kind is dict or kind is list:
            _check_container(item, depth, push)
        elif kind is int or kind is float:
            _check_number(item)
        elif kind is not bool and item is not None:
            _check_other(item, depth, push)


def _check_container(item: dict[Any, Any] | list[Any], depth: int, push: Callable[[tuple[Any, int]], None]) -> None:
    """Queue a container's children; an object's keys are checked before any child is."""
    if depth >= MAX_DEPTH:
        raise ValueRejected(f"nesting deeper than {MAX_DEPTH} levels")
    depth += 1
    if isinstance(item, dict):
        for key, child in item.items():
            if type(key) is not str and not isinstance(key, str):
                raise ValueRejected("an object key that is not a string")
            if not key.isascii() and _SURROGATE.search(key):
                raise ValueRejected(f"a lone surrogate in the key {key!r} (not valid Unicode)")
            push((child, depth))
    else:
        for child in item:
            push((child, depth))


def _check_number(item: int | float) -> None:
    """The float and integer rules, for the exact types and their subclasses alike."""
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueRejected(f"the number {item} is not finite (NaN and Infinity are not JSON)")
    elif not -_INT_BOUND < item < _INT_BOUND:
        raise ValueRejected(f"an integer of more than {MAX_INT_DIGITS} digits")


def _check_str(item: str) -> None:
    if _SURROGATE.search(item):
        raise ValueRejected(f"a lone surrogate in the string {item[:40]!r} (not valid Unicode)")


def _check_other(item: Any, depth: int, push: Callable[[tuple[Any, int]], None]) -> None:
    """The rules for a value that is not of an exact JSON type (a subclass, a placeholder, other)."""
    if isinstance(item, (dict, list)):
        _check_container(item, depth, push)
    elif isinstance(item, str):
        _check_str(item)
    elif isinstance(item, bool):
        return
    elif isinstance(item, (int, float)):
        _check_number(item)
    elif isinstance(item, _Bad):
        raise ValueRejected(item.reason)
    else:
        raise ValueRejected(f"a {type(item).__name__}, which is not a JSON value")
