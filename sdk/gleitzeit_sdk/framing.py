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
from dataclasses import dataclass

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


@dataclass(eq=False)
class _Queued:
    data: bytes
    started: Callable[[], None] | None
    taken: bool = False  # in a write already (committed: it goes out whole)
    error: Exception | None = None  # that write failed (the stream broke): raised to its sender too


class LineWriter:
    """Serialises whole lines onto a stream; safe to share between tasks.

    Lines sent while a write is under way go out together in the next one, in the
    order they were sent: a burst of requests (or responses) finishing in one loop
    turn costs two writes, not one each (each write wakes the peer, and yields a
    loop turn). Every sender still returns only once the write holding its line was
    accepted by the stream (back-pressure as before).

    Cancelling a send is safe: ``started`` (if given) is called exactly when the
    bytes are committed, and a line once started goes out whole; a sender cancelled
    before its line was taken into a write sends nothing. A message in pieces
    cancelled between two pieces cannot be completed, so the writer is then
    ``broken`` and refuses every later send (the peer must be stopped).
    """

    def __init__(self, stream: AnyByteSendStream):
        self._stream = stream
        self._queue: list[_Queued] = []  # lines waiting for the next write, in order
        self._busy = False  # a write (or a message in pieces) is under way
        self._done: anyio.Event | None = None  # set when it ends: the waiting senders look again
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise anyio.BrokenResourceError("a message in pieces was cut off; the stream is unusable")

    async def _wait_done(self) -> None:
        if self._done is None:
            self._done = anyio.Event()
        await self._done.wait()

    def _finish(self) -> None:
        self._busy = False
        done, self._done = self._done, None
        if done is not None:
            done.set()

    async def send_line(self, data: bytes, started: Callable[[], None] | None = None, *, linger: bool = False) -> None:
        """Write one line. ``linger``: after the write, keep the writer one loop turn (shielded,
        as a stream's drain), so the lines other tasks send in that turn go out together in the
        next write: for a sender that expects company (the stream may not yield, and each write
        wakes the peer). The first line of a burst still goes out at once."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check()
        line = _Queued(data + b"\n", started)
        self._queue.append(line)
        try:
            while not line.taken:
                if self._busy:
                    await self._wait_done()
                else:
                    await self._write_queue(linger)
        except BaseException:
            if not line.taken:
                self._queue.remove(line)
            raise
        if line.error is not None:
            raise line.error

    async def _write_queue(self, linger: bool = False) -> None:
        """Every queued line in one write (then one loop turn more, if ``linger``)."""
        self._busy = True
        try:
            # No await between this check and the stream's own: once past it, a cancel
            # can only arrive after the bytes are in the stream's buffer.
            await anyio.lowlevel.checkpoint_if_cancelled()
            self._check()
            batch, self._queue = self._queue, []
            for line in batch:
                line.taken = True
                if line.started is not None:
                    line.started()
            try:
                await self._stream.send(batch[0].data if len(batch) == 1 else b"".join(q.data for q in batch))
            except Exception as exc:  # a cancel in the stream's drain is not one: the bytes went out
                for line in batch:
                    line.error = exc
                raise
            if linger:
                await anyio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._finish()

    async def send_message(self, data: bytes, max_line: int, started: Callable[[], None] | None = None, *,
                           linger: bool = False) -> None:
        """``data`` as one line if it fits in ``max_line`` bytes (``linger`` as in ``send_line``),
        else in pieces (only for a peer that announced ``maxAssembledBytes``: the caller checks)."""
        if len(data) <= max_line:
            return await self.send_line(data, started, linger=linger)
        step = max_line - 1
        if step < 1:
            raise ValueError("max_line too small for pieces")
        view = memoryview(data)
        starts = range(0, len(data), step)
        while self._busy or self._queue:  # no other line between the pieces: after the queued ones
            if not self._busy:
                await self._write_queue()
            else:
                await self._wait_done()
        self._busy = True
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
            self._check()
            if started is not None:
                started()
            await self._stream.send(b"".join((PIECE, view[0:step], b"\n")))
            try:
                for start in starts[1:]:
                    mark = LAST_PIECE if start == starts[-1] else PIECE
                    await self._stream.send(b"".join((mark, view[start:start + step], b"\n")))
            except BaseException:
                self.broken = True
                raise
        finally:
            self._finish()

    async def aclose(self) -> None:
        await self._stream.aclose()
