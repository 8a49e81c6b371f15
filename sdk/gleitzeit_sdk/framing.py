"""Transport layer: bytes <-> lines on a byte stream. Knows nothing of JSON-RPC.

One message per ``\\n``-terminated line. The line cap is hard: anyio's
``receive_until`` checks its limit only between reads, so we check again.

A message longer than the peer's line cap may travel in pieces (PROTOCOL.md
§1.1) when the peer announced ``maxAssembledBytes``: every piece but the last
is a line starting with ``+``, the last one starts with ``=``; the receiver
joins what follows the marks. ``send_message`` / ``receive_message`` do this; ``*_line`` never do.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
from anyio.abc import AnyByteReceiveStream, AnyByteSendStream
from anyio.streams.buffered import BufferedByteReceiveStream

from gleitzeit_sdk.codes import DEFAULT_MAX_MESSAGE_BYTES
from gleitzeit_sdk.errors import MessageTooLarge, ProtocolViolation

_DISCARD_CHUNK = 1 << 20
PIECE = b"+"  # first byte of a piece line; no JSON text starts with it
LAST_PIECE = b"="  # first byte of a message's last piece


class LineReader:
    def __init__(self, stream: AnyByteReceiveStream, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 max_assembled_bytes: int = 0):
        self._buf = BufferedByteReceiveStream(stream)
        self.max_bytes = max_bytes
        self.max_assembled_bytes = max_assembled_bytes  # 0: pieces are not accepted
        self._mid_line = False  # an oversized line's tail is still unread
        self._skip_pieces = False  # an over-limit message's remaining pieces are still unread

    async def receive_message(self) -> bytes | bytearray:
        """Next message: one line, or the joined pieces of one (see the module doc).

        Over ``max_assembled_bytes`` in total raises ``MessageTooLarge``; a peer that
        goes on calls ``discard_line()``, which also drops the message's other pieces.
        """
        line = await self.receive_line()
        if not self.max_assembled_bytes or not line.startswith((PIECE, LAST_PIECE)):
            return line
        message = bytearray()  # grown in place: never the pieces and their join at once
        while True:
            if len(message) + len(line) - 1 > self.max_assembled_bytes:
                self._skip_pieces = line.startswith(PIECE)
                raise MessageTooLarge(
                    f"message in pieces longer than the {self.max_assembled_bytes}-byte limit", line[1:121])
            message += memoryview(line)[1:]
            if line.startswith(LAST_PIECE):
                return message
            line = await self.receive_line()
            if not line.startswith((PIECE, LAST_PIECE)):
                raise ProtocolViolation("a message in pieces ended without its last piece", line[:120])

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
        await self._discard_rest_of_line()
        while self._skip_pieces:
            line = await self.receive_line()
            self._skip_pieces = not line.startswith(LAST_PIECE)

    async def _discard_rest_of_line(self) -> None:
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
    """Serialises whole lines onto a stream; safe to share between tasks.

    Cancelling a send is safe: ``started`` (if given) is called exactly when the
    bytes are committed, and a line once started goes out whole. A message in
    pieces cancelled between two pieces cannot be completed, so the writer is
    then ``broken`` and refuses every later send (the peer must be stopped).
    """

    def __init__(self, stream: AnyByteSendStream):
        self._stream = stream
        # fast_acquire: an uncontended send does not yield to the event loop first (a whole
        # loop turn per message otherwise, on both sides of every request).
        self._lock = anyio.Lock(fast_acquire=True)
        self.broken = False

    async def _commit(self, data: bytes, started: Callable[[], None] | None) -> None:
        # No await between this check and the stream's own: once past it, a cancel
        # can only arrive after the bytes are in the stream's buffer.
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self.broken:
            raise anyio.BrokenResourceError("a message in pieces was cut off; the stream is unusable")
        if started is not None:
            started()
        await self._stream.send(data)

    async def send_line(self, data: bytes, started: Callable[[], None] | None = None) -> None:
        async with self._lock:
            await self._commit(data + b"\n", started)

    async def send_message(self, data: bytes, max_line: int, started: Callable[[], None] | None = None) -> None:
        """``data`` as one line if it fits in ``max_line`` bytes, else in pieces
        (only for a peer that announced ``maxAssembledBytes``: the caller checks)."""
        if len(data) <= max_line:
            return await self.send_line(data, started)
        step = max_line - 1
        if step < 1:
            raise ValueError("max_line too small for pieces")
        view = memoryview(data)
        starts = range(0, len(data), step)
        async with self._lock:  # no other message between the pieces
            await self._commit(b"".join((PIECE, view[0:step], b"\n")), started)
            try:
                for start in starts[1:]:
                    mark = LAST_PIECE if start == starts[-1] else PIECE
                    await self._stream.send(b"".join((mark, view[start:start + step], b"\n")))
            except BaseException:
                self.broken = True
                raise

    async def aclose(self) -> None:
        await self._stream.aclose()
