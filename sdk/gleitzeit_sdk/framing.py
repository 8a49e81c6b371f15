"""Transport layer: bytes <-> lines on a byte stream. Knows nothing of JSON-RPC.

One message per ``\\n``-terminated line. The line cap is hard: anyio's
``receive_until`` checks its limit only between reads, so we check again.
"""

from __future__ import annotations

import anyio
from anyio.abc import AnyByteReceiveStream, AnyByteSendStream
from anyio.streams.buffered import BufferedByteReceiveStream

from gleitzeit_sdk.codes import DEFAULT_MAX_MESSAGE_BYTES
from gleitzeit_sdk.errors import MessageTooLarge, ProtocolViolation

_DISCARD_CHUNK = 1 << 20


class LineReader:
    def __init__(self, stream: AnyByteReceiveStream, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._buf = BufferedByteReceiveStream(stream)
        self.max_bytes = max_bytes
        self._mid_line = False  # an oversized line's tail is still unread

    async def receive_line(self) -> bytes:
        """Next non-blank line without its terminator.

        Raises ``anyio.EndOfStream`` on a clean EOF, ``MessageTooLarge`` (a
        ``ProtocolViolation``) for a line over the cap, ``ProtocolViolation`` for
        a partial line cut off by EOF. After ``MessageTooLarge`` a peer that wants
        to go on calls ``discard_line()``; the host treats it as fatal instead.
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
                self._mid_line = True
                raise MessageTooLarge(
                    f"line longer than the {self.max_bytes}-byte limit", bytes(self._buf.buffer[:120])
                ) from None
            if len(line) > self.max_bytes:
                raise MessageTooLarge(f"line longer than the {self.max_bytes}-byte limit", line[:120])
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip():
                return line

    async def discard_line(self) -> None:
        """Skip the rest of an oversized line, so reading can resume at the next one.

        Raises ``anyio.EndOfStream`` if the stream ends first.
        """
        while self._mid_line:
            try:
                chunk = await self._buf.receive(max(_DISCARD_CHUNK, len(self._buf.buffer)))
            except anyio.EndOfStream:
                self._mid_line = False
                raise
            end = chunk.find(b"\n")
            if end >= 0:
                self._buf.feed_data(chunk[end + 1 :])
                self._mid_line = False


class LineWriter:
    """Serialises whole lines onto a stream; safe to share between tasks."""

    def __init__(self, stream: AnyByteSendStream):
        self._stream = stream
        self._lock = anyio.Lock()

    async def send_line(self, data: bytes) -> None:
        async with self._lock:
            await self._stream.send(data + b"\n")

    async def aclose(self) -> None:
        await self._stream.aclose()
