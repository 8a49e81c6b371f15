"""Schemas derived from handler type hints."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from gleitzeit_sdk import RequestContext
from gleitzeit_sdk.typeschema import params_schema, result_schema, schema_for_type


@pytest.mark.parametrize(
    ("tp", "schema"),
    [
        (str, {"type": "string"}),
        (bool, {"type": "boolean"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (Any, {}),
        (str | None, {"type": ["string", "null"]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (dict, {"type": "object"}),
        (Literal["a", "b"], {"enum": ["a", "b"]}),
        (tuple[int, str], {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False}),
        (list[int] | None, {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]}),
    ],
)
def test_schema_for_type(tp: Any, schema: dict[str, Any]) -> None:
    assert schema_for_type(tp) == schema


def test_params_schema_skips_ctx_and_marks_required_and_defaults() -> None:
    async def handler(ctx: RequestContext, code: str, context: dict | None = None, timeout: float = 5.0) -> dict:
        return {}

    assert params_schema(handler) == {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "context": {"type": ["object", "null"], "default": None},
            "timeout": {"type": "number", "default": 5.0},
        },
        "required": ["code"],
        "additionalProperties": False,
    }
    assert result_schema(handler) == {"type": "object"}


def test_var_keyword_allows_extra_params() -> None:
    async def handler(ctx: RequestContext, **options: Any) -> None: ...

    assert params_schema(handler)["additionalProperties"] is True


class Thing: ...


def test_a_type_without_json_form_is_a_clear_registration_error() -> None:
    async def handler(ctx: RequestContext, thing: Thing) -> None: ...

    with pytest.raises(TypeError, match="parameter 'thing'.*pass params_schema= explicitly"):
        params_schema(handler)


def test_unresolvable_hints_are_a_clear_registration_error() -> None:
    async def handler(ctx: RequestContext, x: NoSuchType) -> None: ...  # noqa: F821

    with pytest.raises(TypeError, match="cannot resolve the type hints.*pass params_schema= explicitly"):
        params_schema(handler)
