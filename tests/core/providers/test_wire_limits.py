"""The host against a provider that answers legal but hostile JSON, or that cannot read what it is sent.

Each answer must become an error of that request alone (or, for a line that cannot be
decoded at all, of that provider's in-flight requests): never an exception that escapes
the host, never a request that waits forever.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from gleitzeit_core.errors import ProviderError
from gleitzeit_core.providers.host import ProviderHost
from gleitzeit_sdk.codes import FailureKind
from tests.core.providers.test_actor import manifest
from tests.helpers.procs import marker

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("answer, message", [
    ("deep200", "nesting deeper than 128 levels"),
    ("bigint", "an integer of 5000 digits"),
    ("nan", "NaN is not a JSON number"),
    ("inf", "1e999 is out of range"),
])
async def test_an_unusable_answer_fails_that_request_only(answer: str, message: str):
    async with ProviderHost([manifest("ok", marker())]) as host:
        actor = host.actor_for_protocol("test/v1")
        pid = await actor.request("test/pid", {})
        with anyio.fail_after(10), pytest.raises(ProviderError, match=message) as info:
            await actor.request("test/hostile", {"answer": answer})
        assert info.value.kind is FailureKind.INVALID_RESPONSE and not info.value.retryable
        assert await actor.request("test/pid", {}) == pid  # same process: the connection went on


async def test_an_undecodable_answer_is_a_protocol_violation_not_an_engine_crash():
    async with ProviderHost([manifest("ok", marker())]) as host:
        actor = host.actor_for_protocol("test/v1")
        pid = await actor.request("test/pid", {})
        with anyio.fail_after(10), pytest.raises(ProviderError, match="nests deeper than 128 levels") as info:
            await actor.request("test/hostile", {"answer": "deep"})
        assert info.value.kind is FailureKind.CRASHED
        assert await actor.request("test/pid", {}) != pid  # restarted


async def test_an_error_with_id_null_never_leaves_a_request_waiting():
    async with ProviderHost([manifest("ok", marker())]) as host:
        actor = host.actor_for_protocol("test/v1")
        with anyio.fail_after(10), pytest.raises(ProviderError, match="id null"):
            await actor.request("test/hostile", {"answer": "null_id"})


async def test_the_host_never_sends_a_line_over_the_providers_limit():
    async with ProviderHost([manifest("ok", marker())]) as host:
        actor = host.actor_for_protocol("test/v1")
        pid = await actor.request("test/pid", {})
        with anyio.fail_after(10), pytest.raises(ProviderError) as info:
            await actor.request("test/echo", {"blob": "x" * 5000})
        err = info.value
        assert err.kind is FailureKind.TOO_LARGE and not err.retryable
        assert "over provider 'fake''s limit of 4096 bytes" in err.message and "by reference" in err.message
        assert await actor.request("test/echo", {"blob": "x" * 100}) == {"blob": "x" * 100}
        assert await actor.request("test/pid", {}) == pid


async def test_unsendable_params_fail_before_anything_is_sent():
    async with ProviderHost([manifest("ok", marker())]) as host:
        actor = host.actor_for_protocol("test/v1")
        with pytest.raises(ProviderError, match="not sendable JSON") as info:
            await actor.request("test/echo", {"x": float("nan")})
        assert info.value.kind is FailureKind.INVALID_PARAMS
        # legal as a JSON escape, but not Unicode: refused before sending (PROTOCOL.md §1)
        with pytest.raises(ProviderError, match="lone surrogate"):
            await actor.request("test/echo", {"t": "a\ud800b"})
        assert await actor.request("test/echo", {"t": "ü🚀"}) == {"t": "ü🚀"}


async def test_default_timeout_applies_only_without_a_task_timeout():
    async with ProviderHost([manifest("ok", marker())]) as host:
        actor = host.actor_for_protocol("test/v1")
        with anyio.fail_after(10), pytest.raises(ProviderError, match=r"timed out after 1 s \(test/quick's defaultTimeoutSec"):
            await actor.request("test/quick", {"seconds": 3})
        # a larger task timeout wins over the provider's default
        assert await actor.request("test/quick", {"seconds": 1.5}, timeout=10) == {"slept": 1.5}


async def test_siblings_of_a_request_that_ignored_its_cancel_say_so():
    async with ProviderHost([manifest("ignore_cancel", marker())]) as host:
        actor = host.actor_for_protocol("test/v1")
        errors: dict[str, ProviderError] = {}

        async def run(name: str, **kw) -> None:
            try:
                await actor.request("test/sleep", {"seconds": 30}, **kw)
            except ProviderError as exc:
                errors[name] = exc

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: run("no_timeout"))
                tg.start_soon(lambda: run("long_timeout", timeout=25))
                await anyio.sleep(0.2)
                tg.start_soon(lambda: run("short", timeout=0.3))
        assert errors["short"].kind is FailureKind.TIMEOUT and "0.3 s" in errors["short"].message
        for name in ("no_timeout", "long_timeout"):
            err = errors[name]
            assert err.kind is FailureKind.CRASHED and err.retryable, err.message
            assert "did not answer a cancelled request within 5 s" in err.message
            assert "timed out" not in err.message


async def test_provider_refusals_are_named_for_what_they_are():
    from gleitzeit_core.providers.manifest import parse_manifest

    demo = Path(__file__).resolve().parents[2] / "sdk" / "demo_provider.py"
    m = parse_manifest({"name": "demo", "command": "{python}", "args": [str(demo)], "protocols": ["demo/v1"]}, "<t>")
    async with ProviderHost([m]) as host:
        actor = host.actor_for_protocol("demo/v1")
        with pytest.raises(ProviderError) as info:
            await actor.request("demo/echo", {"text": 5})
        assert info.value.message.startswith("invalid params: invalid params for demo/echo: parameter 'text'")
        assert not info.value.retryable
