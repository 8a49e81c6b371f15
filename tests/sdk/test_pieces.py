"""Messages in pieces (PROTOCOL.md §1.1): split by LineWriter.send_message, joined by
LineReader.receive_message, every line within the line cap, the total capped."""

from __future__ import annotations

import random

import pytest

from gleitzeit_sdk import MessageTooLarge, ProtocolViolation
from gleitzeit_sdk.framing import LineReader, LineWriter
from gleitzeit_sdk.testing import memory_pipe

pytestmark = pytest.mark.anyio
CAP = 64


class Recorder:
    """A send stream that keeps what was written, to check the lines themselves."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def send(self, item: bytes) -> None:
        self.data += item

    async def aclose(self) -> None:
        pass


def messages() -> list[bytes]:
    rng = random.Random(7)
    out = [b'{"a":1}', b'{"s":"' + b"x" * (CAP - 8) + b'"}']  # fits / exactly the cap
    for n in (CAP, CAP + 1, 3 * CAP, 1000, 20_000):
        out.append(b'{"s":"' + bytes(rng.choice(b"ab+=\\\"c ") for _ in range(n)) + b'"}')
    out.append(b'{"x":' + b"+" * 500 + b"}")  # piece marks inside the data change nothing
    return out


@pytest.mark.parametrize("data", messages(), ids=lambda d: str(len(d)))
async def test_a_message_of_any_size_arrives_whole_and_no_line_exceeds_the_cap(data: bytes) -> None:
    rec = Recorder()
    await LineWriter(rec).send_message(data, CAP)
    lines = bytes(rec.data).split(b"\n")[:-1]
    assert all(len(line) <= CAP for line in lines)
    assert len(lines) == 1 if len(data) <= CAP else len(lines) > 1
    send, receive = memory_pipe()
    reader = LineReader(receive, CAP, max_assembled_bytes=1 << 20)
    await send.send(bytes(rec.data) + b'{"next":1}\n')
    assert await reader.receive_message() == data
    assert await reader.receive_message() == b'{"next":1}'


async def test_over_the_assembled_limit_fails_that_message_and_reading_goes_on() -> None:
    rec = Recorder()
    writer = LineWriter(rec)
    await writer.send_message(b'{"s":"' + b"y" * 1000 + b'"}', CAP)
    await writer.send_line(b'{"next":2}')
    send, receive = memory_pipe()
    reader = LineReader(receive, CAP, max_assembled_bytes=500)
    await send.send(bytes(rec.data))
    with pytest.raises(MessageTooLarge):
        await reader.receive_message()
    await reader.discard_line()
    assert await reader.receive_message() == b'{"next":2}'


async def test_pieces_are_refused_unless_announced_and_must_end_with_a_last_piece() -> None:
    send, receive = memory_pipe()
    await send.send(b'+{"a":\n={"b":1}\n')
    plain = LineReader(receive, CAP)  # max_assembled_bytes 0: lines are lines (and not JSON)
    assert await plain.receive_message() == b'+{"a":'
    send, receive = memory_pipe()
    await send.send(b'+{"a":\n{"b":1}\n')
    with pytest.raises(ProtocolViolation, match="without its last piece"):
        await LineReader(receive, CAP, max_assembled_bytes=1000).receive_message()
