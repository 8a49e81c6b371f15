"""A real provider process run through ``provider.run()``."""

from __future__ import annotations

import signal

import pytest

from gleitzeit_sdk import codes
from gleitzeit_sdk.testing import spawn

pytestmark = pytest.mark.anyio

EXIT_DEADLINE = 2.0  # the protocol's promise: exit within 2 s of stdin EOF


async def test_print_in_a_handler_does_not_reach_the_wire(demo_argv: list[str]) -> None:
    async with spawn(demo_argv) as proc:
        await proc.client.handshake()
        resp = await proc.client.request("demo/print", {"text": "hello from print"})
        assert (await proc.client.request("ping"))["result"] == {}
        await proc.client.close()
        assert await proc.wait_exit(EXIT_DEADLINE) == 0
    assert resp["result"] == "hello from print"
    assert "hello from print" in proc.stderr
    assert "raw write to fd 1" in proc.stderr
    assert len(proc.client.log) == 3  # initialize, demo/print, ping: nothing else came out of stdout


async def test_child_processes_cannot_touch_the_wire(demo_argv: list[str]) -> None:
    async with spawn(demo_argv) as proc:
        await proc.client.handshake()
        await proc.client.send_raw(b"\n")  # bytes on the wire's stdin a child could steal
        resp = await proc.client.request("demo/child")
        assert (await proc.client.request("ping"))["result"] == {}
    assert resp["result"] == 0
    assert "child says hi" in proc.stderr
    assert "child read ''" in proc.stderr  # fd 0 is /dev/null for children


async def test_exits_0_on_stdin_eof_even_with_a_task_running(demo_argv: list[str]) -> None:
    async with spawn(demo_argv) as proc:
        await proc.client.handshake()
        await proc.client.send({"jsonrpc": "2.0", "id": 1, "method": "demo/slow", "params": {"seconds": 60}})
        assert "result" in await proc.client.request("ping")
        await proc.client.close()
        assert await proc.wait_exit(EXIT_DEADLINE) == 0
        assert (await proc.client.response_to(1))["error"]["code"] == codes.CANCELLED


async def test_exits_0_on_eof_before_initialize(demo_argv: list[str]) -> None:
    async with spawn(demo_argv) as proc:
        await proc.client.close()
        assert await proc.wait_exit(EXIT_DEADLINE) == 0


async def test_sigterm_stops_like_eof_cancelling_handlers_and_exiting_0(demo_argv: list[str]) -> None:
    async with spawn(demo_argv) as proc:
        await proc.client.handshake()
        await proc.client.send({"jsonrpc": "2.0", "id": 1, "method": "demo/slow", "params": {"seconds": 60}})
        assert "result" in await proc.client.request("ping")
        proc.process.send_signal(signal.SIGTERM)
        assert await proc.wait_exit(EXIT_DEADLINE) == 0
        assert (await proc.client.response_to(1))["error"]["code"] == codes.CANCELLED
