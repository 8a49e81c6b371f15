"""``jsonlimits.check``: each limit at its edge, for exact JSON types (the fast path every
request and stored result takes) and for subclasses and other types (the general rules)."""

from __future__ import annotations

import enum
import math

import pytest

from gleitzeit_sdk import jsonlimits
from gleitzeit_sdk.jsonlimits import MAX_DEPTH, ValueRejected, check


class Str(str):
    pass


class Int(int):
    pass


class Big(enum.IntEnum):
    HUGE = 10**64


class Dict(dict):
    pass


class List(list):
    pass


def nested(levels: int, leaf: object = 1, make: type = list) -> object:
    value = leaf
    for _ in range(levels):
        value = make([value]) if make is not dict else {"k": value}
    return value


ACCEPTED = [
    None, True, False, 0, -(10**64) + 1, 10**64 - 1, 1.5, -0.0, "", "plain", "ümlaut ✓ 𝄞",
    {"a": [1, {"b": None}]}, nested(MAX_DEPTH), nested(MAX_DEPTH, make=dict),
    Str("sub"), Int(7), Dict(a=List([1, Str("x")])),
]


@pytest.mark.parametrize("value", ACCEPTED, ids=range(len(ACCEPTED)))
def test_values_inside_the_limits_pass(value: object) -> None:
    check(value)


REJECTED = [
    (10**64, "more than 64 digits"),
    (-(10**64), "more than 64 digits"),
    (Int(10**64), "more than 64 digits"),
    (Big.HUGE, "more than 64 digits"),
    (math.nan, "not finite"),
    (-math.inf, "not finite"),
    ({"a": [1, math.inf]}, "not finite"),
    ("ok \ud800", "lone surrogate in the string"),
    (Str("\udfff"), "lone surrogate in the string"),
    ({"x": {"k\udc00": 1}}, "lone surrogate in the key"),
    ({1: "a"}, "key that is not a string"),
    (Dict({None: 1}), "key that is not a string"),
    (nested(MAX_DEPTH + 1), f"deeper than {MAX_DEPTH}"),
    (nested(MAX_DEPTH + 1, make=dict), f"deeper than {MAX_DEPTH}"),
    (nested(MAX_DEPTH + 1, make=List), f"deeper than {MAX_DEPTH}"),
    ((1, 2), "a tuple, which is not a JSON value"),
    ([{"a": {1, 2}}], "a set, which is not a JSON value"),
    (b"bytes", "a bytes, which is not a JSON value"),
    (jsonlimits.DECODER.decode("[1, NaN]"), "NaN is not a JSON number"),
    (jsonlimits.DECODER.decode("1" * 65), "an integer of 65 digits"),
]


@pytest.mark.parametrize(("value", "reason"), REJECTED, ids=[r for _, r in REJECTED])
def test_each_limit_is_refused_with_its_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueRejected, match=reason):
        check(value)


def test_an_objects_keys_are_checked_before_its_values() -> None:
    with pytest.raises(ValueRejected, match="key that is not a string"):
        check({"a": math.nan, 2: 0})


def test_the_walk_is_iterative_at_any_depth() -> None:
    with pytest.raises(ValueRejected, match="deeper"):
        check(nested(100_000))
