"""The actor's process handling against a real provider process: the health ping (skipped while a
request is in flight, a failed one restarts the provider and counts as a crash), the host's kill and
stop (what the requests still in flight are told, the shutdown request and its grace), the request
path (``_meta.timeoutSec``, a restart when the provider ended while a request waited for a slot,
how a request's notifications are routed). The mutation-testing selection `actor_process`
(docs/testing.md) runs this file first."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from gleitzeit_core.errors import ProviderError, ProviderUnavailable
from gleitzeit_core.output_streams import log_stream
from gleitzeit_core.providers import actor as actor_module
from gleitzeit_core.providers.host import ProviderHost
from gleitzeit_core.providers.manifest import parse_manifest
from gleitzeit_sdk.codes import FailureKind
from tests.helpers.procs import alive, marker, wait_gone

pytestmark = pytest.mark.anyio

#: A plain NDJSON provider; argv: mode, marker, a directory for the files it leaves as evidence.
PROVIDER = r'''
import json, os, sys, threading, time

mode, _mark, where = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
cancelled = set()


def send(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def answer(mid, result):
    send({"jsonrpc": "2.0", "id": mid, "result": result})


def touch(name):
    with open(os.path.join(where, name), "w"):
        pass


def handle(msg):
    mid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
    token = params.get("_meta", {}).get("progressToken")
    if method == "initialize":
        answer(mid, {"protocolVersion": "1", "provider": {"name": "proc", "version": "0"}, "protocols": ["p/v1"],
                     "capabilities": {"concurrency": {"maxInFlight": 4}},
                     "methods": [{"name": n} for n in ("p/meta", "p/chatty", "p/sleep", "p/crash_on_go")]})
    elif method == "ping":
        if mode == "ping_hangs":
            return
        if mode == "ping_error":
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32603, "message": "unwell"}})
            return
        if mode == "ping_exits":
            os._exit(5)
        answer(mid, {})
    elif method == "shutdown":
        if mode == "shutdown_error":
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32603, "message": "no"}})
            return
        if mode == "shutdown_exits":
            os._exit(0)
        time.sleep(0.3)  # tidying up: the host waits for this answer (up to 1 s)
        touch("shut-down")
        answer(mid, None)
    elif method == "$/cancelRequest":
        cancelled.add(params.get("id"))
        touch("cancel-seen")
    elif method == "p/meta":
        answer(mid, params["_meta"])
    elif method == "p/chatty":
        for note, p in (("$/output", {"stream": "stderr", "data": "out"}),
                        ("$/log", {"level": "warning", "message": "careful"}),
                        ("$/progress", {"progress": 3, "total": 10, "message": "a" * 200 + "b" * 100}),
                        ("$/progress", {"progress": 4}),
                        ("$/custom", {"message": "other"}), ("$/status", {"message": "other"})):
            send({"jsonrpc": "2.0", "method": note, "params": {"token": token, **p}})
        answer(mid, "done")
    elif method == "p/sleep":
        touch("sleeping")
        deadline = time.time() + params["seconds"]
        while time.time() < deadline:
            if mid in cancelled and mode != "ignore_cancel":
                send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32800, "message": "cancelled"}})
                return
            time.sleep(0.01)
        answer(mid, os.getpid())
    elif method == "p/crash_on_go":
        touch("running")
        while not os.path.exists(os.path.join(where, "go")):
            time.sleep(0.01)
        os._exit(3)


for line in sys.stdin:
    if line.strip():
        threading.Thread(target=handle, args=(json.loads(line),), daemon=True).start()
'''


@pytest.fixture
def provider(tmp_path: Path):
    """A host factory for the provider above in ``mode``; the files it leaves are in tmp_path."""
    script = tmp_path / "provider.py"
    script.write_text(PROVIDER)
    mark = marker()

    def host(mode: str = "ok", **extra) -> ProviderHost:
        data = {"name": "proc", "command": "{python}", "args": [str(script), mode, mark, str(tmp_path)],
                "protocols": ["p/v1"], "startup_timeout": 5, **extra}
        return ProviderHost([parse_manifest(data, "<test>")])

    yield host
    assert wait_gone(mark) == []


async def wait_for(path: Path) -> None:
    with anyio.fail_after(10):
        while not path.exists():
            await anyio.sleep(0.02)


async def wait_dead(pid: int) -> None:
    with anyio.fail_after(10):
        while alive(pid):
            await anyio.sleep(0.02)


async def wait_ended(actor, pid: int) -> None:
    """Until the actor saw its process end (not just the process gone: the host may not have read
    the end of its output yet)."""
    with anyio.fail_after(10):
        while actor.pid == pid:
            await anyio.sleep(0.02)


@pytest.fixture
def quick_pings(monkeypatch):
    monkeypatch.setattr(actor_module, "PING_INTERVAL", 0.05)
    monkeypatch.setattr(actor_module, "PING_TIMEOUT", 0.2)


# -- the health ping ----------------------------------------------------------------------------

async def test_no_ping_while_a_request_runs_then_an_unanswered_ping_kills_it_as_a_crash(provider, quick_pings):
    """The provider never answers a ping: the request outlives many ping intervals (no ping while it
    runs); once idle, the ping times out, the provider is killed, and that counts as a crash."""
    async with provider("ping_hangs", restart={"max_restarts": 1, "window": 60}) as host:
        actor = host.actor_for_protocol("p/v1")
        pid = await actor.request("p/sleep", {"seconds": 0.6})
        await wait_ended(actor, pid)
        with pytest.raises(ProviderUnavailable, match="crashed 1 times within 60 s"):
            await actor.request("p/meta", {})


@pytest.mark.parametrize("mode", ["ping_error", "ping_exits"])
async def test_a_ping_answered_with_an_error_or_by_exiting_restarts_the_provider(provider, quick_pings, mode):
    async with provider(mode) as host:
        actor = host.actor_for_protocol("p/v1")
        pid = await actor.request("p/sleep", {"seconds": 0})
        await wait_ended(actor, pid)
        assert await actor.request("p/sleep", {"seconds": 0}) != pid


# -- the host's kill and stop ---------------------------------------------------------------------

async def test_a_request_in_flight_when_the_host_kills_the_provider_is_told_why(provider, monkeypatch):
    monkeypatch.setattr(actor_module, "CANCEL_GRACE", 0.2)
    async with provider("ignore_cancel") as host:
        actor = host.actor_for_protocol("p/v1")
        errors: dict[str, ProviderError] = {}

        async def attempt(name: str, timeout: float | None) -> None:
            with pytest.raises(ProviderError) as info:
                await actor.request("p/sleep", {"seconds": 30}, timeout=timeout)
            errors[name] = info.value

        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt, "bystander", None)
            tg.start_soon(attempt, "timed out", 0.3)
        assert errors["timed out"].kind is FailureKind.TIMEOUT
        assert errors["bystander"].message == ("provider 'proc' was killed because it did not answer a cancelled "
                                               "request within 0.2 s; p/sleep was still running on it")
        assert errors["bystander"].kind is FailureKind.CRASHED and errors["bystander"].retryable


async def test_a_timed_out_request_still_waits_out_its_cancel_when_its_caller_is_cancelled(
        provider, monkeypatch, tmp_path):
    """The caller is cancelled while the timed-out request waits for the provider's final answer:
    the wait goes on (shielded), so a provider that ignores the cancel is still killed."""
    monkeypatch.setattr(actor_module, "CANCEL_GRACE", 0.5)
    async with provider("ignore_cancel") as host:
        actor = host.actor_for_protocol("p/v1")
        pid = await actor.request("p/sleep", {"seconds": 0})

        async def attempt() -> None:
            with pytest.raises(ProviderError, match="timed out"):  # the cancel is delivered after the wait
                await actor.request("p/sleep", {"seconds": 30}, timeout=0.2)

        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt)
            await wait_for(tmp_path / "cancel-seen")
            tg.cancel_scope.cancel()
        await wait_dead(pid)


async def test_a_request_in_flight_when_the_host_stops_the_provider_is_told_so(provider, tmp_path):
    async with provider(restart={"max_restarts": 1, "window": 60}) as host:
        actor = host.actor_for_protocol("p/v1")
        errors: list[ProviderError] = []

        async def attempt() -> None:
            with pytest.raises(ProviderError) as info:
                await actor.request("p/sleep", {"seconds": 30})
            errors.append(info.value)

        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt)
            await wait_for(tmp_path / "sleeping")
            await actor.stop()
        [error] = errors
        assert error.message == "provider 'proc' was stopped by the host; p/sleep was still running on it"
        assert error.kind is FailureKind.CRASHED and error.retryable
        assert await actor.request("p/sleep", {"seconds": 0})  # a stop is no crash: the budget of 1 is intact


async def test_stop_waits_for_the_answer_to_shutdown_even_when_its_caller_is_cancelled(provider, tmp_path):
    async with provider() as host:
        actor = host.actor_for_protocol("p/v1")
        await actor.request("p/meta", {})
        with anyio.CancelScope() as scope:
            scope.cancel()
            await actor.stop()
        assert (tmp_path / "shut-down").exists()  # written just before the answer, 0.3 s into shutdown
        assert actor.pid is None


@pytest.mark.parametrize("mode", ["shutdown_error", "shutdown_exits"])
async def test_stop_survives_an_error_or_an_exit_in_answer_to_shutdown(provider, mode):
    async with provider(mode) as host:
        actor = host.actor_for_protocol("p/v1")
        pid = await actor.request("p/sleep", {"seconds": 0})
        await actor.stop()
        assert actor.pid is None
        await wait_dead(pid)


# -- the request path ---------------------------------------------------------------------------

async def test_timeout_travels_as_meta_only_when_there_is_one(provider):
    async with provider() as host:
        actor = host.actor_for_protocol("p/v1")
        assert (await actor.request("p/meta", {}, timeout=5))["timeoutSec"] == 5
        assert "timeoutSec" not in await actor.request("p/meta", {})


async def test_a_request_waiting_for_a_slot_when_the_provider_crashed_runs_on_a_new_one(provider, tmp_path):
    async with provider(max_in_flight=1) as host:
        actor = host.actor_for_protocol("p/v1")
        first = await actor.request("p/sleep", {"seconds": 0})
        results: dict[str, object] = {}

        async def crash() -> None:
            with pytest.raises(ProviderError, match="crashed during p/crash_on_go"):
                await actor.request("p/crash_on_go", {})

        async def waiting() -> None:
            results["waiting"] = await actor.request("p/sleep", {"seconds": 0})

        async with anyio.create_task_group() as tg:
            tg.start_soon(crash)
            await wait_for(tmp_path / "running")
            tg.start_soon(waiting)  # the only slot is taken: it waits
            await anyio.sleep(0.1)
            (tmp_path / "go").touch()
        assert results["waiting"] not in (None, first)


async def test_a_requests_notifications_are_routed_by_kind(provider, caplog):
    caplog.set_level(logging.INFO, logger="gleitzeit.provider")
    async with provider() as host:
        actor = host.actor_for_protocol("p/v1")
        seen: list[tuple[str, str]] = []
        assert await actor.request("p/chatty", {}, on_output=lambda stream, data: seen.append((stream, data))) == "done"
        assert await actor.request("p/chatty", {}) == "done"  # without a handler: only logged
    assert seen == [("stderr", "out"), (log_stream("warning"), "careful\n")]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[proc]")]
    assert lines == 2 * ["[proc] careful", "[proc] progress 3/10: " + "a" * 200, "[proc] progress 4"]
