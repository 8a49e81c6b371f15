"""JSON Schema (2020-12) from a handler's type hints, so simple providers need not write schemas.

Only types with an obvious JSON form are mapped; anything else is a registration
error that tells the author to pass a schema explicitly.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_SCALARS: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def schema_for_type(tp: Any) -> dict[str, Any]:
    """The JSON Schema of one annotation; raises TypeError for types with no JSON form."""
    if tp is Any or tp is inspect.Parameter.empty or tp is object:
        return {}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        parts = [schema_for_type(a) for a in args]
        if all(set(p) == {"type"} and isinstance(p["type"], str) for p in parts):
            return {"type": [p["type"] for p in parts]}
        return {"anyOf": parts}
    if tp in (dict, Mapping) or origin in (dict, Mapping):
        if len(args) == 2 and args[1] is not Any:
            return {"type": "object", "additionalProperties": schema_for_type(args[1])}
        return {"type": "object"}
    if tp in (list, Sequence) or origin in (list, Sequence):
        return {"type": "array", "items": schema_for_type(args[0])} if args else {"type": "array"}
    if origin is tuple and args and args[-1] is not Ellipsis:
        return {"type": "array", "prefixItems": [schema_for_type(a) for a in args], "items": False}
    if tp is tuple or origin is tuple:
        return {"type": "array", "items": schema_for_type(args[0])} if args else {"type": "array"}
    raise TypeError(f"no JSON Schema for type {tp!r}")


def params_schema(handler: Callable[..., Any]) -> dict[str, Any]:
    """Object schema of the handler's parameters after the first (the RequestContext)."""
    hints = _hints(handler, "params_schema")
    params = list(inspect.signature(handler).parameters.values())[1:]
    props: dict[str, Any] = {}
    required: list[str] = []
    extra_allowed = False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            extra_allowed = True
            continue
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            raise TypeError(f"parameter {p.name!r} of {handler.__qualname__} cannot be passed by name")
        try:
            prop = schema_for_type(hints.get(p.name, Any))
        except TypeError as exc:
            raise TypeError(
                f"parameter {p.name!r} of {handler.__qualname__}: {exc}; pass params_schema= explicitly"
            ) from None
        if p.default is p.empty:
            required.append(p.name)
        elif _is_json(p.default):
            prop = {**prop, "default": p.default}
        props[p.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": extra_allowed}
    if required:
        schema["required"] = required
    return schema


def result_schema(handler: Callable[..., Any]) -> dict[str, Any]:
    hint = _hints(handler, "result_schema").get("return", Any)
    try:
        return schema_for_type(hint)
    except TypeError as exc:
        raise TypeError(f"return type of {handler.__qualname__}: {exc}; pass result_schema= explicitly") from None


def _hints(handler: Callable[..., Any], option: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(handler)
    except NameError as exc:
        raise TypeError(f"cannot resolve the type hints of {handler.__qualname__} ({exc}); pass {option}= explicitly") from None


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
