"""Registering methods on a Provider."""

from __future__ import annotations

import pytest

import gleitzeit_sdk
from gleitzeit_sdk import Provider, RequestContext


def test_public_surface_is_a_tuple_of_existing_names() -> None:
    assert isinstance(gleitzeit_sdk.__all__, tuple)
    for name in gleitzeit_sdk.__all__:
        assert hasattr(gleitzeit_sdk, name), name


@pytest.mark.parametrize("name", ["execute", "Python/execute", "$/cancel", "python/", "py thon/x"])
def test_method_names_must_be_protocol_slash_action(name: str) -> None:
    with pytest.raises(ValueError, match="protocol/action"):
        Provider("p", "1").method(name)


def test_duplicate_methods_and_sync_handlers_are_refused() -> None:
    provider = Provider("p", "1")

    @provider.method("p/a")
    async def a(ctx: RequestContext) -> None: ...

    with pytest.raises(ValueError, match="already registered"):
        provider.method("p/a")
    with pytest.raises(TypeError, match="async"):
        provider.method("p/b")(lambda ctx: None)


def test_explicit_schemas_are_checked_and_code_params_must_name_params() -> None:
    provider = Provider("p", "1")
    with pytest.raises(ValueError, match="not a valid JSON Schema"):

        @provider.method("p/a", params_schema={"type": "objekt"})
        async def a(ctx: RequestContext) -> None: ...

    with pytest.raises(ValueError, match="code_params names unknown parameters"):

        @provider.method("p/b", code_params={"source": "python"})
        async def b(ctx: RequestContext, code: str) -> None: ...


def test_protocols_default_to_method_prefixes_and_description_to_the_docstring() -> None:
    provider = Provider("p", "1")

    @provider.method("text/upper")
    async def upper(ctx: RequestContext, text: str) -> str:
        """Upper-case the text.

        Details nobody needs in the descriptor."""
        return text.upper()

    @provider.method("llm/chat", description="Chat.")
    async def chat(ctx: RequestContext) -> None: ...

    result = provider.initialize_result()
    assert result["protocols"] == ["llm/v1", "text/v1"]
    assert [m["description"] for m in result["methods"]] == ["Upper-case the text.", "Chat."]
    assert Provider("p", "1", protocols=["x/v2"]).protocols == ["x/v2"]
