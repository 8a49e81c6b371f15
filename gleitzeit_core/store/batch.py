"""Group commit: the record saves issued in one event-loop turn become one transaction.

The scheduler writes every state change before it acts on it, and awaits each
write. When several attempts finish in the same turn, each ``save_task`` would
be its own transaction; here the first save of a turn opens a batch, yields
once so that every other coroutine already runnable in that turn can add its
saves, and then commits them all together. Every caller's await returns only
after the transaction holding its write has committed, so nothing is acted on
before it is durable -- exactly as strong as one transaction per call.

Saves that arrive while a batch is committing go into the next batch, which
commits after it (order is kept: a later save of the same record wins). The
backend encodes each record when the save is *called*, so a caller that
mutates its record afterwards cannot change what is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, TypeVar

import anyio
import anyio.lowlevel


@dataclass
class Writes:
    """One transaction's worth of saves, as each backend encoded them (last save of a key wins)."""

    runs: dict[str, Any] = field(default_factory=dict)  # run id → encoded run
    tasks: dict[str, Any] = field(default_factory=dict)  # task id → encoded task
    attempts: dict[tuple[str, int], Any] = field(default_factory=dict)  # (task id, number) → encoded attempt


B = TypeVar("B")


@dataclass
class _Batch(Generic[B]):
    writes: B
    committed: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class GroupCommit(Generic[B]):
    """Coalesces concurrent saves into one ``commit(writes)`` call per turn.

    ``new`` makes an empty batch: the store's ``Writes``, or e.g. ``list`` for the
    worker pool's Redis writes (the same turn-wise batching, other records)."""

    def __init__(self, commit: Callable[[B], Awaitable[None]], new: Callable[[], B] = Writes):  # type: ignore[assignment]
        self._commit = commit
        self._new = new
        self._open: _Batch[B] | None = None  # the batch still taking saves
        self._order: anyio.Lock | None = None  # one commit at a time, in batch order
        #: transactions committed so far (an operation count for tests and benchmarks)
        self.transactions = 0

    def reset(self) -> None:
        """Forget the event loop's primitives: a store may be reopened on another loop."""
        self._open, self._order = None, None

    async def write(self, add: Callable[[B], None]) -> None:
        """``add`` puts this caller's encoded records into the batch; returns once they committed."""
        batch = self._open
        if batch is not None:
            add(batch.writes)
            await batch.committed.wait()
        else:
            batch = self._open = _Batch(self._new())
            add(batch.writes)
            # Shielded: the other callers of this batch wait for it, so it must commit
            # even if the coroutine that opened it is cancelled meanwhile.
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()  # the rest of this turn joins
                if self._order is None:  # uncontended (the usual case): taken without another loop turn
                    self._order = anyio.Lock(fast_acquire=True)
                async with self._order:
                    self._open = None  # from here on, saves go into the next batch
                    try:
                        await self._commit(batch.writes)
                        self.transactions += 1
                    except BaseException as exc:  # every caller of the batch gets it
                        batch.error = exc
                    finally:
                        batch.committed.set()
        if batch.error is not None:
            raise batch.error
