"""The provider host against real, deliberately misbehaving provider processes."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from gleitzeit_core.errors import ProviderError, ProviderUnavailable
from gleitzeit_core.providers.host import ProviderHost
from gleitzeit_core.providers.manifest import parse_manifest
from gleitzeit_sdk.codes import FailureKind
from tests.helpers.procs import alive, marker, wait_gone

pytestmark = pytest.mark.anyio
FAKE = str(Path(__file__).with_name("fake_provider.py"))


def manifest(mode: str, mark: str, **extra):
    data = {"name": "fake", "command": "{python}", "args": [FAKE, mode, mark], "protocols": ["test/v1"],
            "startup_timeout": 5, **extra}
    return parse_manifest(data, "<test>")


async def test_round_trip_and_handshake_methods():
    mark = marker()
    async with ProviderHost([manifest("ok", mark)]) as host:
        actor = host.actor_for_protocol("test/v1")
        assert await actor.request("test/echo", {"x": [1, "ü"]}) == {"x": [1, "ü"]}
        assert "test/sleep" in actor.methods
        assert actor.capacity == 4
    assert wait_gone(mark) == []


async def test_many_requests_in_flight_are_correlated():
    mark = marker()
    async with ProviderHost([manifest("ok", mark)]) as host:
        actor = host.actor_for_protocol("test/v1")
        results = {}

        async def one(i: int) -> None:
            results[i] = await actor.request("test/echo", {"i": i})

        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(one, i)
        assert results == {i: {"i": i} for i in range(40)}


async def test_crash_on_start_quotes_stderr_and_exit_code():
    mark = marker()
    async with ProviderHost([manifest("crash_on_start", mark)]) as host:
        with pytest.raises(ProviderUnavailable) as info:
            await host.actor_for_protocol("test/v1").request("test/echo", {})
    assert "cannot load model weights" in str(info.value)
    assert "exit code 4" in str(info.value)
    assert wait_gone(mark) == []


async def test_hang_on_start_times_out_and_is_killed():
    mark = marker()
    async with ProviderHost([manifest("hang_on_start", mark, startup_timeout=0.5)]) as host:
        with pytest.raises(ProviderUnavailable, match="did not answer initialize within 0.5 s"):
            await host.actor_for_protocol("test/v1").request("test/echo", {})
        assert wait_gone(mark) == []


async def test_missing_command_is_a_clear_error():
    m = parse_manifest({"name": "ghost", "command": "no-such-binary-xyz", "protocols": ["g/v1"]}, "<test>")
    async with ProviderHost([m]) as host:
        with pytest.raises(ProviderUnavailable, match="'no-such-binary-xyz' not found"):
            await host.actor_for_protocol("g/v1").request("g/x", {})


async def test_crash_mid_request_fails_retryably_and_restarts():
    mark = marker()
    async with ProviderHost([manifest("ok", mark)]) as host:
        actor = host.actor_for_protocol("test/v1")
        first = await actor.request("test/pid", {})
        with pytest.raises(ProviderError) as info:
            await actor.request("test/crash", {})
        assert info.value.retryable and info.value.kind is FailureKind.CRASHED
        assert "segfault imminent" in info.value.message and "exit code 3" in info.value.message
        second = await actor.request("test/pid", {})
        assert second != first and not alive(first)
    assert wait_gone(mark) == []


async def test_garbage_on_stdout_is_a_protocol_violation():
    mark = marker()
    async with ProviderHost([manifest("garbage_on_call", mark)]) as host:
        actor = host.actor_for_protocol("test/v1")
        with pytest.raises(ProviderError) as info:
            await actor.request("test/sleep", {"seconds": 1})
        assert "protocol violation" in info.value.message and "this is not json" in info.value.message
        assert info.value.retryable
        assert await actor.request("test/echo", {"a": 1}) == {"a": 1}  # restarted


async def test_timeout_cancels_on_provider_that_honours_it():
    mark = marker()
    async with ProviderHost([manifest("ok", mark)]) as host:
        actor = host.actor_for_protocol("test/v1")
        pid = await actor.request("test/pid", {})
        with pytest.raises(ProviderError, match="timed out after 0.3 s") as info:
            await actor.request("test/sleep", {"seconds": 30}, timeout=0.3)
        assert info.value.kind is FailureKind.TIMEOUT and info.value.retryable
        assert await actor.request("test/pid", {}) == pid  # not killed: it honoured the cancel


async def test_cancel_from_outside_reaches_the_provider_and_waits_for_its_answer():
    """Cancelling the caller (a run cancelled, Ctrl-C) sends $/cancelRequest from the caller's own task and
    returns only once the provider answered it: the handler is gone there, and the provider was not killed."""
    demo = Path(__file__).resolve().parents[2] / "sdk" / "demo_provider.py"
    sdk_manifest = parse_manifest({"name": "demo", "command": "{python}", "args": [str(demo)],
                                   "protocols": ["demo/v1"], "startup_timeout": 20}, "<test>")
    async with ProviderHost([sdk_manifest]) as host:
        actor = host.actor_for_protocol("demo/v1")
        await actor.call_plain("health")
        pid = actor.pid
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: actor.request("demo/slow", {"seconds": 30}))
                with anyio.fail_after(10):
                    while (await actor.call_plain("health"))["inFlight"] == 0:
                        await anyio.sleep(0.02)
                scope.cancel()
        assert scope.cancelled_caught
        assert (await actor.call_plain("health"))["inFlight"] == 0  # cancelled there before we returned
        assert actor.pid == pid  # and not killed


async def test_timeout_kills_provider_that_ignores_cancel():
    mark = marker()
    async with ProviderHost([manifest("ignore_cancel", mark)]) as host:
        actor = host.actor_for_protocol("test/v1")
        pid = await actor.request("test/pid", {})
        with pytest.raises(ProviderError, match="timed out"):
            await actor.request("test/sleep", {"seconds": 30}, timeout=0.3)
        with anyio.fail_after(10):
            while alive(pid):
                await anyio.sleep(0.05)
        assert await actor.request("test/pid", {}) != pid


async def test_restart_budget_marks_provider_failed():
    mark = marker()
    async with ProviderHost([manifest("ok", mark, restart={"max_restarts": 2, "window": 60})]) as host:
        actor = host.actor_for_protocol("test/v1")
        for _ in range(2):
            with pytest.raises(ProviderError):
                await actor.request("test/crash", {})
        with pytest.raises(ProviderUnavailable, match="crashed 2 times within 60 s") as info:
            await actor.request("test/echo", {})
        assert not info.value.retryable
    assert wait_gone(mark) == []


async def test_two_providers_for_one_protocol_is_an_error():
    a = parse_manifest({"name": "a", "command": "{python}", "protocols": ["x/v1"]}, "<a>")
    b = parse_manifest({"name": "b", "command": "{python}", "protocols": ["x/v1"]}, "<b>")
    async with ProviderHost([a, b]) as host:
        with pytest.raises(ProviderUnavailable, match="offered by both 'a'.*and 'b'"):
            host.actor_for_protocol("x/v1")
