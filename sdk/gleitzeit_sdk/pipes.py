"""Byte streams on pipe descriptors, read and written by the event loop itself.

Both ends of the wire use them: a provider for its private stdin/stdout
(``stdio``), the host for a provider's stdout (``gleitzeit_core.providers.process``).
A pipe connected here is read by a plain ``StreamReaderProtocol``: the bytes
reach the waiting reader in the loop turn they arrive. (asyncio's subprocess
pipes hand every chunk on with one more ``call_soon``, a loop turn per message
on the host's side of a round trip.)
"""

from __future__ import annotations

import asyncio
import os

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream
from anyio.streams.file import FileReadStream, FileWriteStream

#: The reader's buffer limit (asyncio pauses reading above twice this).
READ_LIMIT = 1 << 20


class PipeReceiveStream(ByteReceiveStream):
    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.BaseTransport):
        self._reader, self._transport = reader, transport

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self._reader.read(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def aclose(self) -> None:
        self._transport.close()


class PipeSendStream(ByteSendStream):
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


async def open_receive(fd: int) -> ByteReceiveStream:
    """An event-loop reader of ``fd`` (which it then owns); a thread-backed one if fd is a
    regular file (epoll refuses those)."""
    loop = asyncio.get_running_loop()
    file = os.fdopen(fd, "rb", buffering=0)
    reader = asyncio.StreamReader(limit=READ_LIMIT)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), file)
    except ValueError:
        return FileReadStream(file)
    return PipeReceiveStream(reader, transport)


async def open_send(fd: int) -> ByteSendStream:
    """An event-loop writer of ``fd`` (which it then owns) whose ``send`` returns once the
    kernel has every byte; a thread-backed one if fd is a regular file."""
    loop = asyncio.get_running_loop()
    file = os.fdopen(fd, "wb", buffering=0)
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, file)
    except ValueError:
        return FileWriteStream(file)
    transport.set_write_buffer_limits(high=0)  # drain() returns only once the kernel has every byte
    return PipeSendStream(asyncio.StreamWriter(transport, protocol, None, loop))
