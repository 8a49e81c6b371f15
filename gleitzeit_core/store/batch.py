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

A save can also be *staged* (``stage``): its records go into the open batch at
once and the caller awaits ``Staged.committed()`` later, doing other work in
between (the scheduler decides and starts a finished task's dependents there, so
their RUNNING writes join the same transaction). Whoever waits on a batch first
commits it; staged writes are never acted on before that wait returns.
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
    driven: bool = False  # a waiter has taken on committing it


@dataclass(frozen=True)
class Staged(Generic[B]):
    """Writes put into a batch that may not have committed yet."""

    _group: "GroupCommit[B]"
    _batch: _Batch[B]

    async def committed(self) -> None:
        """Returns once the batch holding these writes committed (raises what the commit raised)."""
        await self._group._wait(self._batch)


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

    def stage(self, add: Callable[[B], None]) -> Staged[B]:
        """``add`` puts this caller's encoded records into the open batch (opening one);
        nothing is committed until someone awaits the result's ``committed()``."""
        batch = self._open
        if batch is None:
            batch = self._open = _Batch(self._new())
        add(batch.writes)
        return Staged(self, batch)

    async def write(self, add: Callable[[B], None]) -> None:
        """``add`` puts this caller's encoded records into the batch; returns once they committed."""
        await self.stage(add).committed()

    async def _wait(self, batch: _Batch[B]) -> None:
        if batch.driven:
            if not batch.committed.is_set():  # e.g. a second Staged of one batch: no extra loop turn
                await batch.committed.wait()
        else:
            batch.driven = True
            # Shielded: the other callers of this batch wait for it, so it must commit
            # even if the coroutine committing it is cancelled meanwhile.
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
