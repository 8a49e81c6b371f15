"""A raw host-side peer for tests and the conformance checker; not the orchestrator's client.

``WireClient`` speaks lines, keeps every message it received in order (so
checks can reason about "progress after response"), and can send arbitrary
bytes. ``spawn`` runs a provider executable with the host's stop timeline.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import anyio
from anyio.abc import AnyByteReceiveStream, AnyByteSendStream, ObjectReceiveStream, ObjectSendStream, Process

from gleitzeit_sdk import codes, messages
from gleitzeit_sdk.errors import ProtocolViolation
from gleitzeit_sdk.framing import LineReader

if TYPE_CHECKING:
    from gleitzeit_sdk.provider import Provider

# The host's stop timeline (sdk/PROTOCOL.md, "Shutdown").
STOP_GRACE = 2.0
TERM_GRACE = 2.0
STDERR_TAIL = 64 * 1024


def memory_pipe() -> tuple[ObjectSendStream[bytes], ObjectReceiveStream[bytes]]:
    """An in-memory one-way byte pipe (LineReader/LineWriter accept bytes object streams)."""
    return anyio.create_memory_object_stream[bytes](math.inf)


def initialize_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "protocolVersion": codes.PROTOCOL_VERSION,
        "host": {"name": "gleitzeit-test", "version": "0"},
        "capabilities": {},
        "limits": {"maxMessageBytes": codes.DEFAULT_MAX_MESSAGE_BYTES},
        "logLevel": "info",
        "config": {},
    }
    return params | overrides


class WireClient:
    """A line-level peer. Bad output lines raise ProtocolViolation, or go to ``on_violation`` and are skipped."""

    def __init__(
        self,
        send: AnyByteSendStream,
        receive: AnyByteReceiveStream,
        max_bytes: int = 64 * 1024 * 1024,
        on_violation: Callable[[ProtocolViolation], None] | None = None,
    ):
        self._raw = send
        self._reader = LineReader(receive, max_bytes)
        self._on_violation = on_violation
        self._ids = itertools.count(1000)
        self._responses: dict[tuple[str, Any], dict[str, Any]] = {}  # by id_key
        self.log: list[dict[str, Any]] = []  # every message received, in order
        self.requests: dict[tuple[str, Any], str] = {}  # id_key -> method of every request sent
        self.sent: list[Any] = []  # every message sent with send(), in order
        self.dead = False  # the peer closed its end (EOF or broken pipe seen)

    @property
    def notifications(self) -> list[dict[str, Any]]:
        return [m for m in self.log if "method" in m and "id" not in m]

    def next_id(self) -> int:
        return next(self._ids)

    async def send(self, obj: Any) -> None:
        self.sent.append(obj)
        if isinstance(obj, dict) and isinstance(obj.get("method"), str) and "id" in obj:
            self.requests[id_key(obj["id"])] = obj["method"]
            self._responses.pop(id_key(obj["id"]), None)  # a reused id waits for its new answer
        await self.send_raw(messages.encode(obj) + b"\n")

    async def send_raw(self, data: bytes) -> None:
        try:
            await self._raw.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.dead = True
            raise

    async def close(self) -> None:
        await self._raw.aclose()

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        """Next message. Raises TimeoutError, anyio.EndOfStream, or ProtocolViolation (not one JSON object)."""
        with anyio.fail_after(timeout):
            while True:
                try:
                    line = await self._reader.receive_line()
                except anyio.EndOfStream:
                    self.dead = True
                    raise
                try:
                    obj = messages.decode(line)
                    if isinstance(obj, messages.Rejected):
                        raise ProtocolViolation(f"a value outside the protocol limits: {obj.reason}", line)
                    if not isinstance(obj, dict):
                        raise ProtocolViolation("a line that is not a JSON object", line)
                except ProtocolViolation as exc:
                    if self._on_violation is None:
                        raise
                    self._on_violation(exc)
                    continue
                self.log.append(obj)
                if "method" not in obj:
                    self._responses.setdefault(id_key(obj.get("id")), obj)
                return obj

    async def response_to(self, id: Any, timeout: float = 5.0) -> dict[str, Any]:
        """The (first) response with this id, whether it already arrived or not."""
        key = id_key(id)
        with anyio.fail_after(timeout):
            while key not in self._responses:
                await self.receive(math.inf)
        return self._responses[key]

    async def request(self, method: str, params: Any = None, *, id: Any = None, timeout: float = 5.0) -> dict[str, Any]:
        id = self.next_id() if id is None else id
        await self.send(messages.request(id, method, params))
        return await self.response_to(id, timeout)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self.send(messages.notification(method, params))

    async def handshake(self, timeout: float = 5.0, **overrides: Any) -> dict[str, Any]:
        """initialize + initialized; returns the initialize result or raises RuntimeError."""
        resp = await self.request("initialize", initialize_params(**overrides), timeout=timeout)
        if "result" not in resp:
            raise RuntimeError(f"initialize failed: {resp.get('error')}")
        await self.notify("initialized")
        return resp["result"]

    async def quiet_for(self, seconds: float) -> list[dict[str, Any]]:
        """Whatever arrives within ``seconds`` (for "must not answer" checks)."""
        got: list[dict[str, Any]] = []
        with anyio.move_on_after(seconds):
            while True:
                got.append(await self.receive(math.inf))
        return got


def id_key(id: Any) -> tuple[str, Any]:
    """Ids 7 and "7" (and 1 and true) are different ids."""
    return (type(id).__name__, id)


@dataclass
class ProviderProcess:
    process: Process
    client: WireClient
    stderr_file: BinaryIO
    _stderr_at_exit: str | None = None

    @property
    def stderr(self) -> str:
        """The last 64 KiB the provider wrote to stderr (so far, or before it was stopped)."""
        if self._stderr_at_exit is not None:
            return self._stderr_at_exit
        self.stderr_file.seek(0, os.SEEK_END)
        size = self.stderr_file.tell()
        self.stderr_file.seek(max(0, size - STDERR_TAIL))
        return self.stderr_file.read().decode("utf-8", "replace")

    async def wait_exit(self, timeout: float) -> int | None:
        """Poll the return code (``wait()`` would also wait for pipe EOF from grandchildren)."""
        with anyio.move_on_after(timeout):
            while self.process.returncode is None:
                await anyio.sleep(0.02)
        return self.process.returncode

    async def stop(self, grace: float = STOP_GRACE) -> int | None:
        """Close stdin -> ``grace`` (2 s) -> SIGTERM to the group -> 2 s -> SIGKILL."""
        with anyio.CancelScope(shield=True):
            try:
                await self.client.close()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            for sig, wait in ((None, grace), (signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, 5.0)):
                if sig is not None:
                    try:
                        os.killpg(self.process.pid, sig)
                    except ProcessLookupError:
                        pass
                if await self.wait_exit(wait) is not None:
                    break
            return self.process.returncode


@asynccontextmanager
async def spawn(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stop_grace: float = STOP_GRACE,
    on_violation: Callable[[ProtocolViolation], None] | None = None,
) -> AsyncIterator[ProviderProcess]:
    """Run a provider in its own process group, stderr to a temporary file; always stopped on exit."""
    with tempfile.TemporaryFile() as stderr_file:
        process = await anyio.open_process(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        assert process.stdin and process.stdout
        client = WireClient(process.stdin, process.stdout, on_violation=on_violation)
        proc = ProviderProcess(process, client, stderr_file)
        try:
            yield proc
        finally:
            await proc.stop(stop_grace)
            with anyio.move_on_after(1.0, shield=True):
                await process.aclose()
            proc._stderr_at_exit = proc.stderr


@asynccontextmanager
async def connect(provider: Provider) -> AsyncIterator[WireClient]:
    """Serve ``provider`` in memory; on exit, send EOF and wait for serving to end."""
    to_provider, provider_in = memory_pipe()
    provider_out, from_provider = memory_pipe()
    async with anyio.create_task_group() as tg:
        tg.start_soon(provider.serve, provider_in, provider_out)
        client = WireClient(to_provider, from_provider)
        try:
            yield client
        finally:
            await client.close()
