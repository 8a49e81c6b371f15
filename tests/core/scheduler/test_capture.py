"""What an attempt printed, as its record keeps it (docs/persistence.md "What attempts printed"):
the provider's returned stdout/stderr when it sent them, else what it streamed; each stream
bounded to its first and last 32 Ki characters with one marker line between. In-process
through the scheduler (the mutation-testing selection for scheduler/capture.py)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from gleitzeit_core.dispatch.scripted import ScriptedCall, ScriptedDispatcher
from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.scheduler.scheduler import Scheduler
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import AttemptRecord, TaskStatus
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.retry import RetryPolicy

pytestmark = pytest.mark.anyio

KEPT = 32 * 1024  # characters kept from the start and from the end of each stream (documented)


async def attempts(handler: Callable[[ScriptedCall], Any], retry: RetryPolicy = RetryPolicy()) -> list[AttemptRecord]:
    task = TaskSpec(key="t", name="t", protocol="t/v1", method="t/run", params={}, retry=retry)
    wf = Workflow(id="wf", name="wf", tasks=(task,))
    run, recs = new_run(wf)
    store = InMemoryBackend()
    await store.open()
    await store.create_run(run, list(recs.values()))
    await Scheduler(wf, run, recs, store, ScriptedDispatcher(handler)).execute()
    return await store.get_attempts(recs["t"].id)


def marker(dropped: int) -> str:
    return f"\n[… {dropped:,} characters of output left out …]\n"


def text(n: int, seed: str) -> str:
    """``n`` characters in which every window of 8 is unique (a misplaced cut shows)."""
    return "".join(f"{seed}{i:07d}" for i in range(n // 8 + 1))[:n]


def pieces(data: str, sizes: tuple[int, ...] = (1, 7, 4096, 3, 30_000, 1, 65_536)) -> list[str]:
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i:i + n])
        i, k = i + n, k + 1
    return out


@pytest.mark.parametrize("size", [2 * KEPT, 2 * KEPT + 1, 100_000, 250_001])
async def test_a_long_stream_keeps_its_first_and_last_32_ki_characters(size: int) -> None:
    out, err = text(size, "o"), text(20_005, "e")

    def handler(call: ScriptedCall) -> Any:
        for piece in pieces(out):
            call.print(piece)
        for piece in pieces(err, (5000, 2)):
            call.print(piece, "stderr")
        return 1

    [attempt] = await attempts(handler)
    dropped = size - 2 * KEPT
    assert attempt.stdout == (out[:KEPT] + marker(dropped) + out[-KEPT:] if dropped else out)
    assert attempt.stderr == err  # within the bound: whole, and kept apart from stdout


async def test_one_huge_piece_is_bounded_like_many_small_ones() -> None:
    big = text(3 * KEPT + 11, "x")

    def handler(call: ScriptedCall) -> Any:
        call.print("head:")
        call.print(big)
        return 1

    [attempt] = await attempts(handler)
    whole = "head:" + big
    assert attempt.stdout == whole[:KEPT] + marker(len(whole) - 2 * KEPT) + whole[-KEPT:]


async def test_what_the_provider_returned_wins_over_what_it_streamed() -> None:
    returned = text(KEPT * 3, "r")

    def handler(call: ScriptedCall) -> Any:
        call.print("streamed out")
        call.print("streamed err", "stderr")
        return {"stdout": returned, "stderr": "", "value": 1}

    [attempt] = await attempts(handler)
    assert attempt.stdout == returned[:KEPT] + marker(KEPT) + returned[-KEPT:]
    assert attempt.stderr == "streamed err"  # an empty returned stream does not hide the streamed one


async def test_a_failed_attempt_keeps_the_output_from_the_error_details() -> None:
    def handler(call: ScriptedCall) -> Any:
        call.print("streamed")
        if call.attempt == 1:
            raise ProviderError("boom", retryable=True, details={"stdout": "from the error", "stderr": 5})
        raise ProviderError("boom again", retryable=False, details="not a mapping")

    first, second = await attempts(handler, RetryPolicy(max_attempts=2, base_delay=0))
    assert (first.status, first.stdout, first.stderr) == (TaskStatus.FAILED, "from the error", None)
    assert (second.stdout, second.stderr) == ("streamed", None)


async def test_token_deltas_are_the_result_not_output_and_silence_stores_nothing() -> None:
    def handler(call: ScriptedCall) -> Any:
        call.print("tok", "delta")
        return "tok"

    [attempt] = await attempts(handler)
    assert (attempt.stdout, attempt.stderr) == (None, None)


async def test_the_start_fills_to_the_last_character_when_output_trickles_in() -> None:
    whole = "a" * (KEPT - 2) + "bcdefg" + text(2 * KEPT, "t")

    def handler(call: ScriptedCall) -> Any:
        call.print(whole[:KEPT - 2])
        for ch in whole[KEPT - 2:KEPT + 4]:  # one character at a time across the boundary
            call.print(ch)
        call.print(whole[KEPT + 4:])
        return 1

    [attempt] = await attempts(handler)
    assert attempt.stdout == whole[:KEPT] + marker(len(whole) - 2 * KEPT) + whole[-KEPT:]
