"""LineReader: the hard line cap and skipping an oversized line."""

from __future__ import annotations

import anyio
import pytest

from gleitzeit_sdk import MessageTooLarge, ProtocolViolation
from gleitzeit_sdk.framing import LineReader
from gleitzeit_sdk.testing import memory_pipe

pytestmark = pytest.mark.anyio


async def test_oversized_line_raises_and_discard_resumes_at_the_next_line() -> None:
    send, receive = memory_pipe()
    reader = LineReader(receive, max_bytes=100)
    await send.send(b"a" * 150)
    await send.send(b"a" * 5000 + b"\nnext\n")
    with pytest.raises(MessageTooLarge):
        await reader.receive_line()
    await reader.discard_line()
    assert await reader.receive_line() == b"next"


async def test_discard_after_a_fully_read_oversized_line_keeps_the_next_line() -> None:
    send, receive = memory_pipe()
    reader = LineReader(receive, max_bytes=100)
    await send.send(b"b" * 150 + b"\nkeep\n")  # one chunk: the soft anyio limit reads it whole
    with pytest.raises(MessageTooLarge):
        await reader.receive_line()
    await reader.discard_line()
    assert await reader.receive_line() == b"keep"


async def test_partial_line_at_eof_is_a_violation_and_clean_eof_is_end_of_stream() -> None:
    send, receive = memory_pipe()
    reader = LineReader(receive)
    await send.send(b"done\npartial")
    await send.aclose()
    assert await reader.receive_line() == b"done"
    with pytest.raises(ProtocolViolation, match="middle of a line"):
        await reader.receive_line()
    send2, receive2 = memory_pipe()
    await send2.aclose()
    with pytest.raises(anyio.EndOfStream):
        await LineReader(receive2).receive_line()
