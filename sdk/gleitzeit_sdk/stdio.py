"""Serve a connection on the process's stdin/stdout, with the wire protected from the provider's own code.

Before serving, the real stdin/stdout are moved to private, non-inheritable
descriptors; fd 0 becomes /dev/null and fd 1 becomes stderr. So ``print()``,
C extensions writing to fd 1 and child processes (which inherit fds 0-2) can
neither corrupt the outgoing wire nor swallow incoming bytes.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import NoReturn

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream
from anyio.streams.file import FileReadStream, FileWriteStream

Serve = Callable[[ByteReceiveStream, ByteSendStream], Awaitable[None]]

# If interpreter shutdown hangs (a non-daemon thread stuck in a handler's
# blocking call), exit anyway: the host allows 2 s after closing stdin.
EXIT_WATCHDOG = 0.5


def run(serve: Serve) -> NoReturn:
    wire_in, wire_out = claim_stdio()
    anyio.run(_serve_fds, serve, wire_in, wire_out, backend="asyncio")
    _exit(0)


def claim_stdio() -> tuple[int, int]:
    """Return private (input, output) descriptors of the wire; point fd 0 at /dev/null, fd 1 at stderr."""
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)  # os.dup makes them non-inheritable
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # stray prints reach the host's log promptly
    return wire_in, wire_out


async def _serve_fds(serve: Serve, wire_in: int, wire_out: int) -> None:
    receive = await _open_receive(wire_in)
    send = await _open_send(wire_out)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_sigterm, receive)
            await serve(receive, send)
            tg.cancel_scope.cancel()
    finally:
        with anyio.move_on_after(0.5, shield=True):
            await send.aclose()
        await receive.aclose()


async def _stop_on_sigterm(receive: ByteReceiveStream) -> None:
    """SIGTERM stops like stdin EOF (closing our end makes the read loop see EOF):
    handlers get their -32800, the lifespan cleans up (and stops its children), exit 0."""
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            await receive.aclose()
            return


class _PipeReceiveStream(ByteReceiveStream):
    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.BaseTransport):
        self._reader, self._transport = reader, transport

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self._reader.read(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def aclose(self) -> None:
        self._transport.close()


class _PipeSendStream(ByteSendStream):
    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer

    async def send(self, item: bytes) -> None:
        if self._writer.is_closing():
            raise anyio.BrokenResourceError
        try:
            self._writer.write(item)
            await self._writer.drain()
        except OSError as exc:  # BrokenPipeError, ConnectionResetError
            raise anyio.BrokenResourceError from exc

    async def aclose(self) -> None:
        self._writer.close()  # drain() flushed everything already: the buffer limit is 0


async def _open_receive(fd: int) -> ByteReceiveStream:
    """An event-loop pipe reader; a thread-backed one if fd is a regular file (epoll refuses those)."""
    loop = asyncio.get_running_loop()
    file = os.fdopen(fd, "rb", buffering=0)
    reader = asyncio.StreamReader(limit=1 << 20)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), file)
    except ValueError:
        return FileReadStream(file)
    return _PipeReceiveStream(reader, transport)


async def _open_send(fd: int) -> ByteSendStream:
    loop = asyncio.get_running_loop()
    file = os.fdopen(fd, "wb", buffering=0)
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, file)
    except ValueError:
        return FileWriteStream(file)
    transport.set_write_buffer_limits(high=0)  # drain() returns only once the kernel has every byte
    return _PipeSendStream(asyncio.StreamWriter(transport, protocol, None, loop))


def _exit(code: int) -> NoReturn:
    sys.stderr.flush()
    watchdog = threading.Timer(EXIT_WATCHDOG, os._exit, (code,))
    watchdog.daemon = True
    watchdog.start()
    sys.exit(code)
