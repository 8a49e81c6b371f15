"""What a connection serves is a frozen description; limits may follow initialize's config."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gleitzeit_sdk import Limits, Provider, RequestContext, codes
from gleitzeit_sdk.testing import connect, initialize_params

pytestmark = pytest.mark.anyio


def gated_provider() -> tuple[Provider, list[Any]]:
    """One method that waits until the test releases it; ``configure_limits`` reads ``slots``."""
    provider = Provider("gated", "1.0.0", max_in_flight=1)
    seen: list[Any] = []

    @provider.configure_limits
    def limits(config: dict[str, Any], defaults: Limits) -> Limits:
        seen.append(config)
        if config.get("slots") == "bad":
            raise ValueError("slots must be a number")
        return dataclasses.replace(defaults, max_in_flight=config.get("slots", defaults.max_in_flight))

    @provider.method("gated/wait")
    async def wait(ctx: RequestContext) -> str:
        import anyio

        await anyio.sleep(30)
        return "done"

    @provider.method("gated/now")
    async def now(ctx: RequestContext) -> str:
        return "now"

    return provider, seen


async def test_configured_limit_is_advertised_and_enforced() -> None:
    provider, seen = gated_provider()
    async with connect(provider) as client:
        result = await client.handshake(config={"slots": 3})
        assert result["capabilities"]["concurrency"] == {"maxInFlight": 3}
        for id in (1, 2, 3):
            await client.send({"jsonrpc": "2.0", "id": id, "method": "gated/wait", "params": {}})
        health = await client.request("health")
        assert health["result"]["maxInFlight"] == 3 and health["result"]["inFlight"] == 3
        over = await client.request("gated/now", {})
        assert over["error"]["code"] == codes.OVERLOADED
        assert over["error"]["data"]["maxInFlight"] == 3
        for id in (1, 2, 3):
            await client.notify("$/cancelRequest", {"id": id})
            assert (await client.response_to(id))["error"]["code"] == codes.CANCELLED
    assert seen == [{"slots": 3}]
    assert provider.max_in_flight == 1  # the registry is not changed by a connection


async def test_a_failing_limits_hook_fails_initialize_with_its_message() -> None:
    provider, _ = gated_provider()
    async with connect(provider) as client:
        resp = await client.request("initialize", initialize_params(config={"slots": "bad"}))
        assert resp["error"]["code"] == codes.PROVIDER_ERROR
        assert "slots must be a number" in resp["error"]["message"]
        assert "result" in await client.request("initialize", initialize_params(config={}))  # may retry


async def test_a_limit_below_one_fails_initialize() -> None:
    provider, _ = gated_provider()
    async with connect(provider) as client:
        resp = await client.request("initialize", initialize_params(config={"slots": 0}))
        assert resp["error"]["code"] == codes.PROVIDER_ERROR
        assert "max_in_flight must be an integer >= 1" in resp["error"]["message"]


async def test_changes_to_the_provider_after_serving_started_do_not_reach_the_connection() -> None:
    provider, _ = gated_provider()
    async with connect(provider) as client:
        await client.handshake()

        @provider.method("gated/late")
        async def late(ctx: RequestContext) -> str:
            return "late"

        provider.max_in_flight = 50
        resp = await client.request("gated/late", {})
        assert resp["error"]["code"] == codes.METHOD_NOT_FOUND
        assert (await client.request("health"))["result"]["maxInFlight"] == 1


def test_description_is_frozen() -> None:
    provider, _ = gated_provider()
    description = provider.describe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        description.limits = Limits()  # type: ignore[misc]
    with pytest.raises(TypeError):
        description.methods["x/y"] = None  # type: ignore[index]
    assert description.initialize_result(Limits(max_in_flight=7))["capabilities"]["concurrency"] == {"maxInFlight": 7}
