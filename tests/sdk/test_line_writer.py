"""LineWriter shared by many tasks: lines sent while a write is under way go out together
in the next write, in order and whole; a sender returns only once its line was written;
a cancel never loses a committed line nor sends an uncommitted one."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from gleitzeit_sdk.framing import LineWriter

pytestmark = pytest.mark.anyio


class Stream:
    """Records each send; a send yields a loop turn, as a real stream's does, and can be
    held open (``gate``) to stand for a peer that stopped reading."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.gate: anyio.Event | None = None
        self.fail: Exception | None = None

    async def send(self, item: bytes) -> None:
        if self.fail is not None:
            raise self.fail
        self.writes.append(bytes(item))
        if self.gate is not None:
            await self.gate.wait()
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def aclose(self) -> None:
        pass

    def lines(self) -> list[bytes]:
        return b"".join(self.writes).split(b"\n")[:-1]


async def test_a_burst_of_lines_costs_two_writes_in_order_and_each_sender_returns_after_its_write() -> None:
    stream = Stream()
    writer = LineWriter(stream)
    returned: list[tuple[int, int]] = []  # (sender, writes made when it returned)

    async def send(i: int) -> None:
        await writer.send_line(b'{"n":%d}' % i)
        returned.append((i, len(stream.writes)))

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(send, i)
    assert stream.lines() == [b'{"n":%d}' % i for i in range(10)]
    assert len(stream.writes) == 2  # the first alone, the nine that came while it was written together
    assert sorted(returned) == [(0, 1)] + [(i, 2) for i in range(1, 10)]


async def test_started_is_called_when_the_line_is_committed_to_a_write() -> None:
    stream = Stream()
    writer = LineWriter(stream)
    calls: list[tuple[str, int]] = []
    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(writer.send_line, name.encode(), lambda name=name: calls.append((name, len(stream.writes))))
    assert calls == [("a", 0), ("b", 1), ("c", 1)]  # each before the write that holds it


async def test_a_sender_cancelled_before_its_line_is_written_sends_nothing() -> None:
    stream = Stream()
    stream.gate = anyio.Event()  # the first write hangs: the peer does not read
    writer = LineWriter(stream)
    started: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.send_line, b"first", lambda: started.append("first"))
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as scope:
            tg.start_soon(writer.send_line, b"third", lambda: started.append("third"))
            scope.cancel()
            await writer.send_line(b"dropped", lambda: started.append("dropped"))
        stream.gate.set()
    assert started == ["first", "third"]
    assert stream.lines() == [b"first", b"third"]


async def test_a_writer_cancelled_in_its_write_leaves_no_queued_line_behind() -> None:
    stream = Stream()
    stream.gate = anyio.Event()  # the first write hangs: the peer does not read
    writer = LineWriter(stream)
    scopes: list[anyio.CancelScope] = []

    async def writing() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await writer.send_line(b"writing")

    async with anyio.create_task_group() as tg:
        tg.start_soon(writing)
        await anyio.wait_all_tasks_blocked()  # its bytes are in the stream, the write hangs
        tg.start_soon(writer.send_line, b"queued-1")
        tg.start_soon(writer.send_line, b"queued-2")
        await anyio.wait_all_tasks_blocked()  # both wait for that write
        stream.gate = None
        scopes[0].cancel()  # the task doing the write goes away: one of the others writes the rest
    assert stream.lines() == [b"writing", b"queued-1", b"queued-2"]
    assert len(stream.writes) == 2


async def test_a_failed_write_fails_every_sender_whose_line_it_held() -> None:
    stream = Stream()
    writer = LineWriter(stream)
    outcomes: list[str] = []

    async def send(line: bytes) -> None:
        try:
            await writer.send_line(line)
        except anyio.BrokenResourceError:
            outcomes.append(f"{line.decode()}: broken")
        else:
            outcomes.append(f"{line.decode()}: sent")

    async def first() -> None:
        await send(b"a")
        stream.fail = anyio.BrokenResourceError()

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        tg.start_soon(send, b"b")
        tg.start_soon(send, b"c")
    assert sorted(outcomes) == ["a: sent", "b: broken", "c: broken"]


async def test_no_line_gets_between_the_pieces_of_a_message() -> None:
    stream = Stream()
    writer = LineWriter(stream)
    big = b'{"s":"' + b"x" * 300 + b'"}'
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.send_line, b"before")
        tg.start_soon(writer.send_message, big, 64)
        tg.start_soon(writer.send_line, b"after")
    lines = stream.lines()
    pieces = [i for i, line in enumerate(lines) if line[:1] in (b"+", b"=")]
    assert pieces == list(range(pieces[0], pieces[0] + len(pieces)))  # consecutive
    assert b"".join(lines[i][1:] for i in pieces) == big
    assert sorted(line for line in lines if line[:1] not in (b"+", b"=")) == [b"after", b"before"]


class EagerStream(Stream):
    """A stream whose send does not yield while the peer reads (the SDK's pipe streams)."""

    async def send(self, item: bytes) -> None:
        self.writes.append(bytes(item))


async def test_lingering_senders_coalesce_on_a_stream_that_does_not_yield_the_first_line_at_once() -> None:
    stream = EagerStream()
    writer = LineWriter(stream)
    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(writer.send_line, b"eager-%d" % i)
    assert len(stream.writes) == 5  # without linger: one write each
    stream.writes.clear()
    returned: list[tuple[int, int]] = []

    async def send(i: int) -> None:
        await writer.send_line(b"linger-%d" % i, linger=True)
        returned.append((i, len(stream.writes)))

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(send, i)
    assert stream.writes == [b"linger-0\n", b"".join(b"linger-%d\n" % i for i in range(1, 5))]
    assert sorted(returned) == [(0, 1)] + [(i, 2) for i in range(1, 5)]  # each after the write holding its line


async def test_a_lingering_sender_cancelled_in_its_extra_turn_has_sent_its_line_and_hands_on_the_queue() -> None:
    stream = EagerStream()
    writer = LineWriter(stream)
    scopes: list[anyio.CancelScope] = []
    outcome: list[str] = []

    async def lingering() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await writer.send_line(b"first", linger=True)
            outcome.append("returned")  # the turn is shielded: the cancel comes after

    async with anyio.create_task_group() as tg:
        tg.start_soon(lingering)
        tg.start_soon(writer.send_line, b"other")
        await anyio.lowlevel.checkpoint()  # the first was written and holds the writer; the second waits
        scopes[0].cancel()
    assert stream.writes == [b"first\n", b"other\n"]
    assert outcome == ["returned"]
