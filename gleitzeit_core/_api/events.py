"""Scheduler events as an async iterator, for live progress in a service.

The scheduler calls observers inline and they must not block, so an
``EventStream`` buffers; a subscriber that falls ``buffer`` events behind is
cut off and told so (``EventsLost``) rather than slowing every run down.
Events carry the scheduler's live records, so each buffered event holds a copy
of them as they were when it happened.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any

import anyio

from gleitzeit_core.errors import EventsLost
from gleitzeit_core.scheduler.events import Event

if TYPE_CHECKING:  # anyio's streams load on first subscription, not with the CLI
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

DEFAULT_BUFFER = 10_000  # events; a run of 1,000 tasks emits ~4,000


class EventStream:
    """``async with engine.events() as events: async for event in events: …``

    Yields every event of every run on the engine from the moment of
    subscription; ends when the engine closes.
    """

    def __init__(self, subscribers: set[EventStream], buffer: int = DEFAULT_BUFFER):
        self._subscribers = subscribers
        self._buffer = buffer
        self._lost = False
        send: MemoryObjectSendStream[Event]
        receive: MemoryObjectReceiveStream[Event]
        send, receive = anyio.create_memory_object_stream[Event](buffer)
        self._send, self._receive = send, receive

    def publish(self, event: Event) -> None:
        """The observer side; never blocks."""
        try:
            self._send.send_nowait(snapshot(event))
        except anyio.WouldBlock:
            self._lost = True
            self.close()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def close(self) -> None:
        self._subscribers.discard(self)
        self._send.close()

    async def __aenter__(self) -> EventStream:
        self._subscribers.add(self)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        self._receive.close()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            if self._lost:
                raise EventsLost(f"this event stream fell {self._buffer} events behind; "
                                 "later events were dropped for it") from None
            raise StopAsyncIteration from None



def snapshot(event: Event) -> Event:
    """The event with shallow copies of its records (results are replaced, never mutated)."""
    changes = {f.name: copy.copy(v) for f in dataclasses.fields(event)
               if dataclasses.is_dataclass(v := getattr(event, f.name))}
    return dataclasses.replace(event, **changes)
