"""``run`` / ``resume`` for scripts and ``run_async`` / ``resume_async`` for async code.

Each call opens an ``ExecutionEngine`` for one run. The engine is asyncio-only
(redis.asyncio, the provider host), so:

* ``run_async`` under trio runs the engine on an asyncio loop in a worker
  thread; cancelling the trio caller cancels the run there (it is recorded as
  cancelled and its providers stop), and ``on_event`` is called back in the
  trio thread.
* ``run`` called where an event loop is already running in this thread (a
  Jupyter notebook) runs the engine in a worker thread and blocks until it ends.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio

from gleitzeit_core._api.engine import BackendLike, ExecutionEngine, WorkflowLike, running_trio
from gleitzeit_core._api.result import RunResult
from gleitzeit_core.config import Config
from gleitzeit_core.scheduler.events import Event

T = TypeVar("T")
OnEvent = Callable[[Event], Any]
#: After a cancel, how long the caller waits for the engine thread to stop its
#: providers (each stop is bounded at ~4 s and they stop in parallel).
ENGINE_STOP_TIMEOUT_S = 30.0


async def run_async(workflow: WorkflowLike, *, params: Mapping[str, Any] | None = None,
                    secrets: Mapping[str, str] | None = None, backend: BackendLike = None,
                    config: Config | Mapping[str, Any] | None = None, max_concurrent: int | None = None,
                    on_event: OnEvent | None = None) -> RunResult:
    """Run a workflow (a ``Workflow`` or a file path) to its end, under asyncio or trio.
    ``params``: values of its ``inputs:``; ``secrets``: values of its ``secrets:`` (over the environment).

    >>> result = await gleitzeit_core.run_async("examples/diamond.yaml", backend="memory")
    """
    if running_trio():
        return await _on_asyncio_thread(functools.partial(
            run_async, workflow, params=params, secrets=secrets, backend=backend, config=config,
            max_concurrent=max_concurrent, on_event=_in_this_thread(on_event)))
    async with ExecutionEngine(config, backend=backend, max_concurrent=max_concurrent) as engine:
        return await engine.run(workflow, params=params, secrets=secrets, on_event=on_event)


async def resume_async(run_id: str | None = None, *, workflow: WorkflowLike | None = None, force: bool = False,
                       secrets: Mapping[str, str] | None = None, backend: BackendLike = None,
                       config: Config | Mapping[str, Any] | None = None,
                       max_concurrent: int | None = None, on_event: OnEvent | None = None) -> RunResult:
    """Resume a run by id (or the latest unfinished run of the ``workflow`` file) with the inputs
    it started with; ``secrets`` are needed again (they are never stored)."""
    if running_trio():
        return await _on_asyncio_thread(functools.partial(
            resume_async, run_id, workflow=workflow, force=force, secrets=secrets, backend=backend, config=config,
            max_concurrent=max_concurrent, on_event=_in_this_thread(on_event)))
    async with ExecutionEngine(config, backend=backend, max_concurrent=max_concurrent) as engine:
        return await engine.resume(run_id, workflow=workflow, force=force, secrets=secrets, on_event=on_event)


def run(workflow: WorkflowLike, *, params: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None,
        backend: BackendLike = None, config: Config | Mapping[str, Any] | None = None,
        max_concurrent: int | None = None, on_event: OnEvent | None = None) -> RunResult:
    """Run a workflow to its end and return its ``RunResult`` (blocking; for scripts and notebooks).
    ``params``: values of its ``inputs:``, checked before anything is stored.

    >>> result = gleitzeit_core.run("examples/diamond.yaml")
    >>> result.status.value
    'completed'
    """
    return _blocking(functools.partial(run_async, workflow, params=params, secrets=secrets, backend=backend,
                                       config=config, max_concurrent=max_concurrent, on_event=on_event))


def resume(run_id: str | None = None, *, workflow: WorkflowLike | None = None, force: bool = False,
           secrets: Mapping[str, str] | None = None, backend: BackendLike = None,
           config: Config | Mapping[str, Any] | None = None,
           max_concurrent: int | None = None, on_event: OnEvent | None = None) -> RunResult:
    """Resume an interrupted or failed run (blocking): completed tasks keep their results."""
    return _blocking(functools.partial(resume_async, run_id, workflow=workflow, force=force, secrets=secrets,
                                       backend=backend, config=config, max_concurrent=max_concurrent,
                                       on_event=on_event))


def _blocking(fn: Callable[[], Awaitable[T]]) -> T:
    if _loop_running_here():
        with ThreadPoolExecutor(1, thread_name_prefix="gleitzeit-run") as pool:
            return pool.submit(anyio.run, fn, backend="asyncio").result()
    return anyio.run(fn, backend="asyncio")


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return running_trio()
    return True


def _in_this_thread(callback: OnEvent | None) -> OnEvent | None:
    """``callback`` made callable from the engine's thread: it runs on the caller's loop."""
    if callback is None:
        return None
    import anyio.from_thread
    import anyio.lowlevel

    token = anyio.lowlevel.current_token()

    async def call(event: Event) -> None:  # in a task, so the callback may set events, etc.
        callback(event)

    def relay(event: Event) -> None:
        anyio.from_thread.run(call, event, token=token)
    return relay


async def _on_asyncio_thread(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` on a fresh asyncio loop in a worker thread; a cancel here cancels it there."""
    import anyio.to_thread

    lock = threading.Lock()
    state: dict[str, Any] = {"cancelled": False}
    done = threading.Event()

    async def main() -> T | None:
        with anyio.CancelScope() as scope:
            with lock:
                state["cancel"] = functools.partial(asyncio.get_running_loop().call_soon_threadsafe, scope.cancel)
                if state["cancelled"]:
                    scope.cancel()
            return await fn()
        return None

    def body() -> T | None:
        try:
            return anyio.run(main, backend="asyncio")
        finally:
            done.set()

    try:
        result = await anyio.to_thread.run_sync(body, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            with lock:
                state["cancelled"] = True
                if "cancel" in state:
                    state["cancel"]()
            await anyio.to_thread.run_sync(done.wait, ENGINE_STOP_TIMEOUT_S)
        raise
    assert result is not None  # only a cancel from this side returns None
    return result
