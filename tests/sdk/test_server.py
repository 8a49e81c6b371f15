"""The provider side of a connection, over in-memory streams."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from gleitzeit_sdk import Provider, RequestContext, codes
from gleitzeit_sdk.testing import connect, initialize_params

pytestmark = pytest.mark.anyio


def error_code(resp: dict[str, Any]) -> int:
    assert "error" in resp, resp
    return resp["error"]["code"]


async def test_handshake_advertises_methods_and_limits(demo: Provider) -> None:
    async with connect(demo) as client:
        result = await client.handshake()
    assert result["protocolVersion"] == "1"
    assert result["provider"] == {"name": "demo", "version": "1.2.3"}
    assert result["protocols"] == ["demo/v1"]
    assert result["capabilities"]["concurrency"] == {"maxInFlight": 2}
    assert result["limits"] == {"maxMessageBytes": codes.DEFAULT_MAX_MESSAGE_BYTES,
                                "maxAssembledBytes": codes.DEFAULT_MAX_ASSEMBLED_BYTES}
    methods = {m["name"]: m for m in result["methods"]}
    assert methods["demo/run"]["codeParams"] == {"code": "python"}
    assert methods["demo/echo"]["paramsSchema"]["required"] == ["text"]
    assert methods["demo/echo"]["idempotent"] is True
    assert methods["demo/slow"]["defaultTimeoutSec"] == 60


async def test_unsupported_version_is_refused_with_the_supported_list(demo: Provider) -> None:
    async with connect(demo) as client:
        resp = await client.request("initialize", initialize_params(protocolVersion="2"))
        assert error_code(resp) == codes.INVALID_PARAMS
        assert resp["error"]["data"] == {"supported": ["1"], "requested": "2"}
        assert "result" in await client.request("initialize", initialize_params())  # may retry


async def test_requests_before_initialized_get_not_initialized_but_ping_works(demo: Provider) -> None:
    async with connect(demo) as client:
        assert error_code(await client.request("demo/echo", {"text": "a"})) == codes.NOT_INITIALIZED
        assert (await client.request("ping"))["result"] == {}
        assert "result" in await client.request("initialize", initialize_params())
        assert error_code(await client.request("demo/echo", {"text": "a"})) == codes.NOT_INITIALIZED
        assert error_code(await client.request("health")) == codes.NOT_INITIALIZED
        await client.notify("initialized")
        assert "result" in await client.request("demo/echo", {"text": "a"})
        assert error_code(await client.request("initialize", initialize_params())) == codes.INVALID_REQUEST


async def test_meta_is_removed_before_binding_and_exposed_on_ctx(demo: Provider) -> None:
    meta = {"progressToken": "p", "traceparent": "00-ab-cd-01", "taskId": "t1", "runId": "r1", "attempt": 3}
    async with connect(demo) as client:
        await client.handshake(config={"greeting": "moin"})
        resp = await client.request("demo/echo", {"text": "ab", "repeat": 2, "_meta": meta})
    assert resp["result"] == {"text": "abab", "greeting": "moin", "meta": meta, "attempt": 3}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "'text' is a required property"),
        ({"text": 5}, "parameter 'text': 5 is not of type 'string'"),
        ({"text": "a", "bogus": 1}, "'bogus' was unexpected"),
        ({"text": "a", "_meta": "x"}, "_meta must be an object"),
        (["a"], "params must be an object"),
    ],
)
async def test_invalid_params_name_the_parameter(demo: Provider, params: Any, fragment: str) -> None:
    async with connect(demo) as client:
        await client.handshake()
        resp = await client.request("demo/echo", params)
    assert error_code(resp) == codes.INVALID_PARAMS
    assert fragment in resp["error"]["message"]


async def test_errors_map_to_codes_and_the_connection_survives(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake()
        failed = await client.request("demo/fail", {"retryable": True})
        bug = await client.request("demo/bug")
        missing = await client.request("nope/nothing")
        dollar = await client.request("$/whatever")
        assert "result" in await client.request("demo/echo", {"text": "still alive"})
    assert failed["error"] == {
        "code": codes.TASK_FAILED,
        "message": "it went wrong",
        "data": {"type": "ValueError", "message": "it went wrong", "retryable": True, "details": {"line": 3}},
    }
    assert error_code(bug) == codes.INTERNAL_ERROR
    assert bug["error"]["data"]["type"] == "ZeroDivisionError"
    assert "Traceback" not in json.dumps(bug)
    assert error_code(missing) == codes.METHOD_NOT_FOUND
    assert error_code(dollar) == codes.METHOD_NOT_FOUND


async def test_bad_lines_are_answered_and_ignored_lines_are_not(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake()
        await client.send_raw(b"\n   \r\n")  # blank lines: ignored
        await client.notify("nope/x")  # notifications: never answered
        await client.notify("$/unknown", {"a": 1})
        await client.send_raw(b'{"jsonrpc": "2.0", "id": 1, "meth\n')
        parse_error = await client.receive()
        await client.send_raw(b"\xff\xfe\n")
        utf8_error = await client.receive()
        await client.send([{"jsonrpc": "2.0", "id": 2, "method": "ping"}])
        batch = await client.receive()
        await client.send({"jsonrpc": "1.0", "id": 3, "method": "ping"})
        wrong_version = await client.receive()
        await client.send({"jsonrpc": "2.0", "id": 4, "method": "ping", "params": 7})
        scalar_params = await client.receive()
        assert (await client.request("ping"))["result"] == {}
    assert parse_error["id"] is None and error_code(parse_error) == codes.PARSE_ERROR
    assert utf8_error["id"] is None and error_code(utf8_error) == codes.PARSE_ERROR
    assert batch["id"] is None and error_code(batch) == codes.INVALID_REQUEST
    assert wrong_version["id"] == 3 and error_code(wrong_version) == codes.INVALID_REQUEST
    assert scalar_params["id"] == 4 and error_code(scalar_params) == codes.INVALID_REQUEST
    assert not client.notifications


@pytest.mark.parametrize("value", [b'"a\\ud800b"', b'"\\uDFFF"', b"1" * 65, b"-" + b"9" * 70, b"1e999", b"NaN",
                                   b"-Infinity", b"[" * 130 + b"]" * 130, b'{"a":' * 130 + b"1" + b"}" * 130],
                         ids=["surrogate", "low-surrogate", "long-int", "long-negative", "overflow", "nan", "inf", "deep",
                              "deep-object"])
async def test_one_value_outside_the_limits_is_refused_with_the_id(demo: Provider, value: bytes) -> None:
    """Each limit alone, in an otherwise small request: the decoder's cheap path must not let it through."""
    async with connect(demo) as client:
        await client.handshake()
        await client.send_raw(b'{"jsonrpc":"2.0","id":9,"method":"demo/echo","params":{"text":"a","x":' + value + b"}}\n")
        resp = await client.response_to(9)
        assert (await client.request("ping"))["result"] == {}  # the connection goes on
    assert error_code(resp) == codes.INVALID_REQUEST
    assert "outside the protocol limits" in resp["error"]["message"]


@pytest.mark.parametrize("id", [7, "7", 2**53 - 1, "ünïcødé-✓", None])
async def test_ids_are_echoed_exactly(demo: Provider, id: Any) -> None:
    async with connect(demo) as client:
        await client.handshake()
        await client.send({"jsonrpc": "2.0", "id": id, "method": "demo/echo", "params": {"text": "x"}})
        resp = await client.receive()
    assert resp["id"] == id and type(resp["id"]) is type(id)


async def test_ping_is_answered_while_all_slots_are_busy_and_overload_is_refused(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake()
        for id in (101, 102):
            await client.send({"jsonrpc": "2.0", "id": id, "method": "demo/slow", "params": {"seconds": 30}})
        assert (await client.request("ping"))["result"] == {}
        health = await client.request("health")
        assert health["result"]["inFlight"] == 2
        over = await client.request("demo/echo", {"text": "x"})
        assert error_code(over) == codes.OVERLOADED
        assert over["error"]["data"]["retryable"] is True
        for id in (101, 102):
            await client.notify("$/cancelRequest", {"id": id})
        assert error_code(await client.response_to(101)) == codes.CANCELLED
        assert error_code(await client.response_to(102)) == codes.CANCELLED
        assert "result" in await client.request("demo/echo", {"text": "x"})  # slots are free again


async def test_cancel_gives_exactly_one_response_and_no_progress_after_it(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake()
        params = {"seconds": 30, "steps": 300, "_meta": {"progressToken": "tok"}}
        await client.send({"jsonrpc": "2.0", "id": 5, "method": "demo/slow", "params": params})
        while not client.notifications:
            await client.receive()
        await client.notify("$/cancelRequest", {"id": 5})
        await client.notify("$/cancelRequest", {"id": 5})  # twice: still one response
        await client.notify("$/cancelRequest", {"id": 999})  # unknown: ignored
        resp = await client.response_to(5)
        after = await client.quiet_for(0.3)
    assert error_code(resp) == codes.CANCELLED
    assert after == []
    assert [m for m in client.log if m.get("id") == 5] == [resp]


async def test_cancel_after_completion_is_ignored(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake()
        resp = await client.request("demo/echo", {"text": "x"}, id=9)
        await client.notify("$/cancelRequest", {"id": 9})
        assert await client.quiet_for(0.2) == []
    assert "result" in resp


async def test_progress_and_output_are_tagged_increasing_and_precede_the_response(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake()
        resp = await client.request("demo/slow", {"seconds": 0.05, "steps": 5, "_meta": {"progressToken": 42}})
        silent = await client.request("demo/slow", {"seconds": 0.05, "steps": 5})
    assert resp["result"] == {"slept": 0.05} and "result" in silent
    progress = [n["params"] for n in client.notifications if n["method"] == "$/progress"]
    output = [n["params"] for n in client.notifications if n["method"] == "$/output"]
    assert [p["progress"] for p in progress] == [1, 2, 3, 4, 5]
    assert all(p["token"] == 42 and p["total"] == 5 for p in progress)
    assert [o["seq"] for o in output] == [0, 1, 2, 3, 4]
    assert client.log.index(resp) > max(client.log.index({"jsonrpc": "2.0", "method": "$/output", "params": o}) for o in output)
    assert len(progress) == 5  # the request without a token produced none


async def test_progress_that_does_not_increase_is_dropped() -> None:
    provider = Provider("p", "1")

    @provider.method("p/go")
    async def go(ctx: RequestContext) -> None:
        for value in (1, 1, 0.5, 2):
            await ctx.progress(value)

    async with connect(provider) as client:
        await client.handshake()
        await client.request("p/go", {"_meta": {"progressToken": "t"}})
    assert [n["params"]["progress"] for n in client.notifications] == [1, 2]


async def test_log_respects_the_level_from_initialize(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake(logLevel="warning")
        await client.request("demo/log", {"level": "info", "message": "hidden"}, id=1)
        await client.request("demo/log", {"level": "error", "message": "shown"}, id=2)
        bad = await client.request("demo/log", {"level": "loud", "message": "x"}, id=3)
    assert [n["params"] for n in client.notifications] == [
        {"level": "error", "message": "shown", "requestId": 2, "logger": "demo"}
    ]
    assert error_code(bad) == codes.INTERNAL_ERROR and bad["error"]["data"]["type"] == "ValueError"


async def test_shutdown_then_requests_are_invalid(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake()
        assert (await client.request("shutdown"))["result"] is None
        assert error_code(await client.request("demo/echo", {"text": "x"})) == codes.INVALID_REQUEST
        assert error_code(await client.request("ping")) == codes.INVALID_REQUEST


async def test_eof_cancels_running_handlers_and_ends_serving(demo: Provider) -> None:
    async with connect(demo) as client:
        await client.handshake()
        await client.send({"jsonrpc": "2.0", "id": 1, "method": "demo/slow", "params": {"seconds": 60}})
        assert "result" in await client.request("ping")
        await client.close()
        resp = await client.response_to(1)
    # leaving `connect` proves serve() returned after EOF
    assert error_code(resp) == codes.CANCELLED


async def test_oversized_line_is_refused_and_the_next_line_is_served() -> None:
    provider = Provider("p", "1", max_message_bytes=2048)
    async with connect(provider) as client:
        await client.handshake()
        await client.send({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 10_000}})
        refused = await client.receive()
        assert (await client.request("ping", id=2))["result"] == {}
    assert refused["id"] is None and error_code(refused) == codes.INVALID_REQUEST
    assert refused["error"]["data"] == {"maxMessageBytes": 2048}


async def test_response_over_the_hosts_limit_becomes_an_error() -> None:
    provider = Provider("p", "1")

    @provider.method("p/big")
    async def big(ctx: RequestContext) -> str:
        return "x" * 5000

    async with connect(provider) as client:
        await client.handshake(limits={"maxMessageBytes": 4096})
        resp = await client.request("p/big")
    assert error_code(resp) == codes.INTERNAL_ERROR
    assert resp["error"]["data"]["type"] == "MessageTooLarge"


async def test_lifespan_failure_fails_initialize_and_lifespan_exits_on_eof() -> None:
    events: list[str] = []
    provider = Provider("p", "1")

    @provider.lifespan
    async def lifespan(config: dict[str, Any]):
        if config.get("broken"):
            raise RuntimeError("no model file")
        events.append("start")
        try:
            yield "state"
        finally:
            events.append("stop")

    @provider.method("p/state")
    async def state(ctx: RequestContext) -> str:
        return ctx.state

    async with connect(provider) as client:
        resp = await client.request("initialize", initialize_params(config={"broken": True}))
        assert error_code(resp) == codes.PROVIDER_ERROR
        assert "no model file" in resp["error"]["message"]
        await client.handshake()
        assert (await client.request("p/state"))["result"] == "state"
    assert events == ["start", "stop"]


async def test_a_handler_can_be_cancelled_at_its_next_await() -> None:
    provider = Provider("p", "1")
    reached: list[str] = []

    @provider.method("p/wait")
    async def wait(ctx: RequestContext) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            reached.append("cleanup")

    async with connect(provider) as client:
        await client.handshake()
        await client.send({"jsonrpc": "2.0", "id": "w", "method": "p/wait"})
        assert "result" in await client.request("ping")
        await client.notify("$/cancelRequest", {"id": "w"})
        assert error_code(await client.response_to("w")) == codes.CANCELLED
    assert reached == ["cleanup"]


async def test_a_result_that_is_not_json_becomes_an_error_not_a_dead_connection() -> None:
    provider = Provider("p", "1")

    @provider.method("p/set")
    async def as_set(ctx: RequestContext) -> Any:
        return {1, 2}

    @provider.method("p/nan")
    async def nan(ctx: RequestContext) -> Any:
        await ctx.log("info", "x", data=float("nan"))

    async with connect(provider) as client:
        await client.handshake()
        bad = await client.request("p/set")
        bad_note = await client.request("p/nan")
        assert (await client.request("ping"))["result"] == {}
    assert error_code(bad) == codes.INTERNAL_ERROR and bad["error"]["data"]["type"] == "TypeError"
    assert error_code(bad_note) == codes.INTERNAL_ERROR and bad_note["error"]["data"]["type"] == "ValueError"


async def test_shielded_cleanup_in_a_cancelled_handler_runs_to_the_end() -> None:
    """jsonrpcserver runs handlers in an asyncio.gather child; cancelling must still respect anyio shields."""
    provider = Provider("p", "1")
    cleaned: list[str] = []

    @provider.method("p/work")
    async def work(ctx: RequestContext) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.2)  # e.g. killing a sandbox and waiting for it
                cleaned.append("done")

    async with connect(provider) as client:
        await client.handshake()
        await client.send({"jsonrpc": "2.0", "id": 1, "method": "p/work"})
        assert "result" in await client.request("ping")
        await client.notify("$/cancelRequest", {"id": 1})
        assert error_code(await client.response_to(1)) == codes.CANCELLED
    assert cleaned == ["done"]
