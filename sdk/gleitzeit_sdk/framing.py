"""Transport layer: bytes <-> lines on a byte stream. Knows nothing of JSON-RPC.

One message per ``\\n``-terminated line. The line cap is hard: anyio's
``receive_until`` checks its limit only between reads, so we check again.
"""

from __future__ import annotations

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream
from anyio.streams.buffered import BufferedByteReceiveStream

from gleitzeit_sdk.codes import DEFAULT_MAX_MESSAGE_BYTES
from gleitzeit_sdk.errors import ProtocolViolation


class LineReader:
    def __init__(self, stream: ByteReceiveStream, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._buf = BufferedByteReceiveStream(stream)
        self.max_bytes = max_bytes

    async def receive_line(self) -> bytes:
        """Next non-blank line without its terminator.

        Raises ``anyio.EndOfStream`` on a clean EOF, ``ProtocolViolation`` for a
        line over the cap or a partial line cut off by EOF.
        """
        while True:
            try:
                line = await self._buf.receive_until(b"\n", self.max_bytes + 1)
            except anyio.IncompleteRead:
                rest = bytes(self._buf.buffer)
                if rest.strip():
                    raise ProtocolViolation("stream ended in the middle of a line", rest) from None
                raise anyio.EndOfStream from None
            except anyio.DelimiterNotFound:
                raise ProtocolViolation(
                    f"line longer than the {self.max_bytes}-byte limit", bytes(self._buf.buffer)
                ) from None
            if len(line) > self.max_bytes:
                raise ProtocolViolation(f"line longer than the {self.max_bytes}-byte limit", line)
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip():
                return line


class LineWriter:
    """Serialises whole lines onto a stream; safe to share between tasks."""

    def __init__(self, stream: ByteSendStream):
        self._stream = stream
        self._lock = anyio.Lock()

    async def send_line(self, data: bytes) -> None:
        async with self._lock:
            await self._stream.send(data + b"\n")

    async def aclose(self) -> None:
        await self._stream.aclose()
