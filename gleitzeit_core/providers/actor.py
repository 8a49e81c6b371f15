"""Policy for one provider: lazy start, handshake, in-flight limit, timeouts,
cancellation, health pings, supervised restarts with a crash budget.

The actor is the only owner of its provider process. Each start creates an
*incarnation* (process + connection) that lives in a task started in the host's
task group; a crash ends the incarnation, and the next request starts a new one
while the crash budget allows.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import anyio
from anyio.abc import TaskGroup, TaskStatus

from gleitzeit_core._version import __version__
from gleitzeit_core.errors import ProviderError, ProviderUnavailable
from gleitzeit_core.output_streams import log_stream
from gleitzeit_core.providers.connection import (ClientConnection, ConnectionClosed, RequestNotSent, RequestTooLarge,
                                                 ResponseRejected)
from gleitzeit_core.providers.manifest import ProviderKind, ProviderManifest
from gleitzeit_core.providers.mcp.connection import McpConnection
from gleitzeit_core.providers.process import LaunchSpec, ProviderProcess, inherited_env
from gleitzeit_sdk import codes
from gleitzeit_sdk.codes import FailureKind
from gleitzeit_sdk.errors import RpcError

log = logging.getLogger("gleitzeit.provider")

#: After a cancel, how long a provider may take to send its final response before it is killed (PROTOCOL.md §7).
CANCEL_GRACE = 5.0
#: Idle health pings: how often, and how long an answer may take.
PING_INTERVAL = 30.0
PING_TIMEOUT = 10.0

#: Error codes that mean "this request can never succeed as sent", and how the task error names them.
_REFUSALS = {codes.INVALID_PARAMS: "invalid params", codes.METHOD_NOT_FOUND: "method not found",
             codes.INVALID_REQUEST: "invalid request"}

OutputHandler = Callable[[str, str], None]  # (stream, data)


@dataclass
class Incarnation:
    process: ProviderProcess
    connection: ClientConnection
    info: dict[str, Any]
    scope: anyio.CancelScope
    ended: anyio.Event = field(default_factory=anyio.Event)
    killed_by_host: bool = False
    kill_reason: str = ""  # why the host killed it, for the requests that were still in flight
    in_flight: int = 0


class ProviderActor:
    def __init__(self, manifest: ProviderManifest, tg: TaskGroup, *, config: dict[str, Any] | None = None,
                 log_level: str = "info"):
        self.manifest = manifest
        self._tg = tg
        self._config = {**manifest.config, **(config or {})}
        self._log_level = log_level
        self._lock = anyio.Lock()
        self._current: Incarnation | None = None
        self._crashes = CrashBudget(manifest.restart.max_restarts, manifest.restart.window)
        self._limiter: anyio.CapacityLimiter | None = None
        self._tokens = itertools.count(1)
        self.failed: str | None = None  # set when the crash budget is spent
        self.restarts = 0  # processes started after an earlier one ended (a worker's metrics)
        self.info: dict[str, Any] = {}
        self._methods: dict[str, dict[str, Any]] = {}  # of self.info, built once per start, not per request

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def methods(self) -> dict[str, dict[str, Any]]:
        return self._methods

    @property
    def capacity(self) -> int:
        """Attempts this provider may run at once (known after the first start)."""
        return int(self._limiter.total_tokens) if self._limiter else 1

    @property
    def pid(self) -> int | None:
        return self._current.process.pid if self._current and not self._current.ended.is_set() else None

    # -- lifecycle ----------------------------------------------------------------
    async def ensure_started(self) -> Incarnation:
        inc = self._current
        if inc is not None and not inc.ended.is_set():
            return inc  # the common case, without the lock
        async with self._lock:
            inc = self._current
            if inc is not None and not inc.ended.is_set():
                return inc
            if self.failed:
                raise ProviderUnavailable(self.failed, kind=FailureKind.PROVIDER_FAILED, retryable=False)
            inc = await self._tg.start(self._run_incarnation)
            self.restarts += self._current is not None
            self._current = inc
            self.info = inc.info
            self._methods = {m["name"]: m for m in inc.info.get("methods", []) if isinstance(m, dict) and "name" in m}
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(in_flight_limit(inc.info, self.manifest.max_in_flight))
            return inc

    async def _run_incarnation(self, *, task_status: TaskStatus[Incarnation]) -> None:
        try:
            await self._incarnation(task_status)
        except BaseExceptionGroup as group:
            # A start-up failure surfaces from the inner task group wrapped; hand
            # the caller of ensure_started() the one readable error inside.
            raise _single(group) from None

    async def _incarnation(self, task_status: TaskStatus[Incarnation]) -> None:
        m = self.manifest
        try:
            argv = m.argv()
        except Exception as exc:  # ManifestError: command missing / not executable
            raise ProviderUnavailable(str(exc), kind=FailureKind.PROVIDER_FAILED, retryable=False) from None
        spec = LaunchSpec(tuple(argv), inherited_env(m.inherit_env, m.env), m.workdir(), m.name)
        async with anyio.create_task_group() as tg:
            try:
                proc = await ProviderProcess.spawn(spec, tg)
            except OSError as exc:
                raise ProviderUnavailable(
                    f"provider {m.name!r} cannot start {argv[0]!r}: {exc.strerror or exc}",
                    kind=FailureKind.PROVIDER_FAILED, retryable=False,
                ) from None
            if m.kind is ProviderKind.MCP:
                conn: ClientConnection = McpConnection(proc.stdout, proc.stdin, prefix=m.name,
                                                       probe_timeout=m.startup_timeout / 2,
                                                       on_notification=self._on_notification)
            else:
                conn = ClientConnection(proc.stdout, proc.stdin, on_notification=self._on_notification)
            inc: Incarnation | None = None
            conn_done = anyio.Event()
            try:
                tg.start_soon(self._read, conn, conn_done)
                info = await self._handshake(conn, proc)
                inc = Incarnation(proc, conn, info, tg.cancel_scope)
                tg.start_soon(self._pinger, inc)
                task_status.started(inc)
                await conn_done.wait()  # the provider went away (or was killed)
            finally:
                with anyio.CancelScope(shield=True):
                    if inc is not None:
                        inc.ended.set()
                        if not inc.killed_by_host:
                            self._record_crash(inc)
                    await conn.aclose()
                    await proc.stop()
                tg.cancel_scope.cancel()

    async def _read(self, conn: ClientConnection, done: anyio.Event) -> None:
        try:
            await conn.run()
        finally:
            done.set()

    async def _handshake(self, conn: ClientConnection, proc: ProviderProcess) -> dict[str, Any]:
        params = {
            "protocolVersion": codes.PROTOCOL_VERSION,
            "host": {"name": "gleitzeit", "version": __version__},
            "capabilities": {},
            "limits": {"maxMessageBytes": codes.DEFAULT_MAX_MESSAGE_BYTES,
                       "maxAssembledBytes": codes.DEFAULT_MAX_ASSEMBLED_BYTES},
            "logLevel": self._log_level,
            "config": self._config,
        }
        name = self.manifest.name
        try:
            with anyio.fail_after(self.manifest.startup_timeout):
                info = await conn.call("initialize", params)
        except TimeoutError:
            raise ProviderUnavailable(
                f"provider {name!r} did not answer initialize within {self.manifest.startup_timeout:g} s"
                + (f"; last stderr: {proc.tail()}" if proc.tail() else ""),
                kind=FailureKind.STARTUP_TIMEOUT,
            ) from None
        except ConnectionClosed as exc:
            await anyio.sleep(0.05)  # let the exit status and last stderr arrive
            raise ProviderUnavailable(
                f"provider {name!r} failed during start-up ({exc.reason}); "
                + proc.describe_exit(),
                kind=FailureKind.CRASHED,
            ) from None
        except RpcError as exc:
            raise ProviderUnavailable(f"provider {name!r} refused initialize: {exc.message}", retryable=False) from None
        if not isinstance(info, dict) or not isinstance(info.get("methods"), list):
            raise ProviderUnavailable(f"provider {name!r} sent an invalid initialize result", retryable=False)
        served = served_protocols(info)
        if self.manifest.protocols and set(self.manifest.protocols) != set(served):
            raise ProviderUnavailable(
                f"provider {name!r} serves {', '.join(served) or 'no protocols'} but its manifest "
                f"({self.manifest.source}) says protocols: {', '.join(self.manifest.protocols)}; "
                "fix or remove the manifest's protocols", kind=FailureKind.PROVIDER_FAILED, retryable=False)
        conn.peer_max_bytes = announced_max_bytes(info)
        conn.peer_max_assembled = announced_max_assembled(info)
        await conn.notify("initialized")
        log.debug("provider %s started (pid %s)", name, proc.pid)
        return info

    def _record_crash(self, inc: Incarnation) -> None:
        spent = self._crashes.record(time.monotonic())
        log.warning("provider %s ended unexpectedly: %s", self.name, inc.process.describe_exit())
        if spent:
            self.failed = f"provider {self.name!r} {spent}; not restarting it (last: {inc.process.describe_exit()})"

    async def _pinger(self, inc: Incarnation) -> None:
        while True:
            await anyio.sleep(PING_INTERVAL)
            if inc.in_flight:
                continue
            try:
                with anyio.fail_after(PING_TIMEOUT):
                    await inc.connection.call("ping")
            except (TimeoutError, RpcError, ConnectionClosed):
                log.warning("provider %s failed its health ping; restarting it", self.name)
                self._kill(inc, crashed=True)
                return

    def _kill(self, inc: Incarnation, *, crashed: bool, reason: str = "") -> None:
        inc.killed_by_host = not crashed
        inc.kill_reason = inc.kill_reason or reason
        inc.process.kill_group(signal.SIGKILL)
        inc.scope.cancel()

    async def stop(self) -> None:
        inc = self._current
        if inc is not None and not inc.ended.is_set():
            inc.killed_by_host = True
            inc.kill_reason = inc.kill_reason or f"provider {self.name!r} was stopped by the host"
            with anyio.CancelScope(shield=True):
                try:
                    with anyio.move_on_after(1.0):
                        await inc.connection.call("shutdown")
                except (RpcError, ConnectionClosed):
                    pass
                inc.scope.cancel()
                await inc.ended.wait()

    # -- requests -----------------------------------------------------------------
    async def ping(self) -> float:
        """Round-trip seconds of one ping (starting the provider if needed)."""
        inc = await self.ensure_started()
        t0 = time.perf_counter()
        with anyio.fail_after(PING_TIMEOUT):
            await inc.connection.call("ping")
        return time.perf_counter() - t0

    async def call_plain(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
        """A non-task request (health, models...), outside the in-flight limit."""
        inc = await self.ensure_started()
        with anyio.fail_after(timeout):
            return await inc.connection.call(method, params)

    async def request(
        self,
        method: str,
        params: dict[str, Any],
        *,
        meta: dict[str, Any] | None = None,
        timeout: float | None = None,
        on_output: OutputHandler | None = None,
    ) -> Any:
        """Run one task attempt. Raises ProviderError (with ``retryable``) on any failure.

        ``timeout`` is the workflow's deadline for the attempt (see ``attempt_deadline``).
        It also travels as ``_meta.timeoutSec``, so a provider can bound its own work by it.
        """
        inc = await self.ensure_started()
        assert self._limiter is not None
        timeout, note, params = attempt_deadline(self.methods.get(method), method, timeout, params)
        meta = dict(meta or {})
        if timeout is not None:
            meta["timeoutSec"] = timeout
        try:  # a free slot is taken without a loop turn (CapacityLimiter.acquire always yields one)
            self._limiter.acquire_nowait()
        except anyio.WouldBlock:
            await self._limiter.acquire()
        try:
            if inc.ended.is_set():  # crashed while we waited for a slot
                inc = await self.ensure_started()
            return await self._request_on(inc, method, params, meta, timeout, note, on_output)
        finally:
            self._limiter.release()

    async def _request_on(self, inc: Incarnation, method: str, params: dict[str, Any], meta: dict[str, Any],
                          timeout: float | None, timeout_note: str, on_output: OutputHandler | None) -> Any:
        """One attempt, awaited in the caller's task (no task group of its own): a timeout or a
        cancel from outside reaches the provider as ``$/cancelRequest``, and the attempt ends
        with the provider's one final response, or with the provider killed if none comes."""
        token = f"p{next(self._tokens)}"
        sent: list[int] = []

        def on_note(note: str, p: dict[str, Any]) -> None:
            if note == "$/output" and on_output is not None:
                on_output(str(p.get("stream", "stdout")), str(p.get("data", "")))
            elif note == "$/log":  # logged as before, and kept with the attempt's lines
                self._on_notification(note, p)
                if on_output is not None:
                    on_output(log_stream(str(p.get("level", "info"))), f"{p.get('message', '')}\n")
            elif note == "$/progress":
                total = f"/{p['total']}" if p.get("total") is not None else ""
                message = f": {str(p['message'])[:200]}" if p.get("message") else ""
                log.info("[%s] progress %s%s%s", self.name, p.get("progress"), total, message)

        inc.in_flight += 1
        try:
            try:
                # No deadline, no cancel scope (one per attempt otherwise).
                with anyio.move_on_after(timeout) if timeout is not None else contextlib.nullcontext():
                    return await inc.connection.call(
                        method, {**params, "_meta": {**meta, "progressToken": token}},
                        on_notification=on_note, token=token, on_sent=sent.append)
            except anyio.get_cancelled_exc_class():
                # Cancelled from outside (Ctrl-C, run cancelled): cancel on the provider, wait for its answer.
                with anyio.CancelScope(shield=True):
                    await self._cancel_on_provider(inc, sent)
                raise
            except (RpcError, ConnectionClosed, RequestNotSent, ResponseRejected) as exc:
                if isinstance(exc, ConnectionClosed) and not inc.killed_by_host:
                    await anyio.sleep(0.05)  # let the exit status arrive for the message
                raise attempt_failure(self.name, method, exc, stopped=inc.kill_reason if inc.killed_by_host else None,
                                      exit_status=inc.process.describe_exit()) from None
            # Only a timeout gets here (move_on_after swallowed its cancel).
            with anyio.CancelScope(shield=True):
                answered, result = await self._cancel_on_provider(inc, sent)
            if answered:  # a result that beat the cancel: the work is done
                return result
            raise ProviderError(f"timed out after {timeout:g} s{timeout_note}", kind=FailureKind.TIMEOUT, retryable=True)
        finally:
            inc.in_flight -= 1

    async def _cancel_on_provider(self, inc: Incarnation, sent: list[int]) -> tuple[bool, Any]:
        """$/cancelRequest, then its final response; the provider is killed if that does not come
        within the grace period. Returns (True, result) if the final response was a result."""
        if not sent:
            return False, None  # it never went out: nothing to cancel or wait for
        conn = inc.connection
        try:
            if not inc.ended.is_set():
                try:
                    await conn.cancel(sent[0])
                except ConnectionClosed:
                    pass
            for attempt in range(2):
                with anyio.move_on_after(CANCEL_GRACE):
                    try:
                        return True, await conn.settle(sent[0])
                    except (RpcError, ConnectionClosed, ResponseRejected):
                        return False, None
                if attempt == 0:
                    log.warning("provider %s did not honour a cancel within %g s; killing it", self.name, CANCEL_GRACE)
                    self._kill(inc, crashed=False, reason=f"provider {self.name!r} was killed because it did not "
                                                          f"answer a cancelled request within {CANCEL_GRACE:g} s")
            return False, None
        finally:
            conn.forget(sent[0])

    def _on_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "$/log":
            level = {"debug": logging.DEBUG, "info": logging.INFO, "notice": logging.INFO, "warning": logging.WARNING}.get(
                str(params.get("level")), logging.ERROR)
            log.log(level, "[%s] %s", self.name, params.get("message"))


@dataclass
class CrashBudget:
    """The restart policy (a manifest's ``restart:``): at most ``max_restarts`` crashes within
    ``window`` seconds; the crash that reaches the limit spends the budget."""

    max_restarts: int
    window: float
    _times: collections.deque[float] = field(default_factory=collections.deque, init=False, repr=False)

    def record(self, at: float) -> str | None:
        """Count a crash at ``at`` (monotonic seconds); why the budget is spent, or None."""
        self._times.append(at)
        while self._times and at - self._times[0] > self.window:
            self._times.popleft()
        if len(self._times) >= self.max_restarts:
            return f"crashed {len(self._times)} times within {self.window:g} s"
        return None


def in_flight_limit(info: dict[str, Any], manifest_max: int | None) -> int:
    """How many attempts may run at once: the provider's ``maxInFlight`` (1 if it announces
    none), lowered by the manifest's ``max_in_flight``."""
    advertised = info.get("capabilities", {}).get("concurrency", {}).get("maxInFlight") or 1
    return max(1, int(min(advertised, manifest_max or advertised)))


def attempt_failure(provider: str, method: str, exc: BaseException | None, *, stopped: str | None,
                    exit_status: str) -> ProviderError:
    """The ProviderError for an attempt that ended without a result and did not time out.
    ``stopped``: why the host killed the provider ("" for no reason given), None if it did not;
    ``exit_status``: how the process ended, for a crash."""
    if isinstance(exc, RequestTooLarge):
        return ProviderError(
            f"the request to {method} is {exc.size} bytes, over provider {provider!r}'s limit of "
            f"{exc.limit} bytes (maxMessageBytes); pass large data by reference instead, e.g. as a file "
            f"in the workspace whose path is a parameter", kind=FailureKind.TOO_LARGE, retryable=False)
    if isinstance(exc, RequestNotSent):
        return ProviderError(f"cannot send {method}: {exc}", kind=FailureKind.INVALID_PARAMS, retryable=False)
    if isinstance(exc, ResponseRejected):
        return ProviderError(f"provider {provider!r} sent an unusable response to {method}: {exc.reason}",
                             kind=FailureKind.INVALID_RESPONSE, retryable=False)
    if isinstance(exc, RpcError) and exc.code != codes.CANCELLED:
        return task_error(provider, exc)
    if isinstance(exc, RpcError):
        return ProviderError(f"provider {provider!r} cancelled {method} without being asked",
                             kind=FailureKind.CANCELLED_BY_PROVIDER, retryable=True)
    if stopped is not None:
        return ProviderError(f"{stopped or f'provider {provider!r} was stopped'}; {method} was "
                             "still running on it", kind=FailureKind.CRASHED, retryable=True)
    reason = exc.reason if isinstance(exc, ConnectionClosed) else "connection lost"
    return ProviderError(f"provider {provider!r} crashed during {method} ({reason}); {exit_status}",
                         kind=FailureKind.CRASHED, retryable=True)


def task_error(provider: str, exc: RpcError) -> ProviderError:
    """A provider's error response as the task's error: its ``data.type`` leads the message
    (so the stored error says what kind of failure it was) and ``data.retryable`` decides retries."""
    data = exc.data if isinstance(exc.data, dict) else {}
    if exc.code == codes.TASK_FAILED:
        kind = str(data.get("type") or "TaskFailed")
        text = str(data.get("message") or exc.message)
        return ProviderError(text if text.startswith(kind) else f"{kind}: {text}", kind=FailureKind.TASK_FAILED,
                             retryable=bool(data.get("retryable", True)), code=exc.code,
                             details=data.get("details"))
    if exc.code == codes.OVERLOADED:
        return ProviderError(f"provider {provider!r} is overloaded", kind=FailureKind.OVERLOADED, retryable=True, code=exc.code)
    label = _REFUSALS.get(exc.code)
    if label is not None:
        detail = data.get("message") or (exc.data if exc.data and not data else None)
        return ProviderError(f"{label}: {exc.message}" + (f" ({detail})" if detail and str(detail) not in exc.message else ""),
                             kind=FailureKind.INVALID_PARAMS, retryable=False, code=exc.code)
    return ProviderError(f"provider error {exc.code}: {exc.message}", kind=FailureKind.PROVIDER_ERROR,
                         retryable=bool(data.get("retryable", True)), code=exc.code)


def served_protocols(info: dict[str, Any]) -> list[str]:
    """The protocols an initialize result declares (PROTOCOL.md §2.1); without a usable
    ``protocols`` list, ``<prefix>/v1`` for each method-name prefix."""
    declared = info.get("protocols")
    if isinstance(declared, list) and declared and all(isinstance(p, str) for p in declared):
        return sorted(set(declared))
    names = [m.get("name") for m in info.get("methods") or [] if isinstance(m, dict)]
    return sorted({f"{n.split('/', 1)[0]}/v1" for n in names if isinstance(n, str) and "/" in n})


def announced_max_bytes(info: dict[str, Any]) -> int:
    """The provider's ``limits.maxMessageBytes`` (the protocol default if absent or unusable)."""
    limits = info.get("limits")
    value = limits.get("maxMessageBytes") if isinstance(limits, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1024:
        return value
    return codes.DEFAULT_MAX_MESSAGE_BYTES


def announced_max_assembled(info: dict[str, Any]) -> int:
    """The provider's ``limits.maxAssembledBytes`` (PROTOCOL.md §1.1); 0 when it takes no pieces."""
    limits = info.get("limits")
    value = limits.get("maxAssembledBytes") if isinstance(limits, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def attempt_deadline(descriptor: dict[str, Any] | None, method: str, timeout: float | None,
                     params: dict[str, Any]) -> tuple[float | None, str, dict[str, Any]]:
    """The attempt's deadline, a note for its timeout message, and the params to send (PROTOCOL.md §2.2).

    Precedence: the task's ``timeout``; else the method's ``timeoutParam`` parameter if the
    workflow set it; else the method's ``defaultTimeoutSec``; else none. The ``timeoutParam``
    parameter, if the method has one, is then set to that same number.
    """
    descriptor = descriptor or {}
    param = descriptor.get("timeoutParam")
    param = param if isinstance(param, str) else None
    note = ""
    if timeout is None and param is not None and _positive(params.get(param)):
        timeout = float(params[param])
    if timeout is None and _positive(descriptor.get("defaultTimeoutSec")):
        timeout = float(descriptor["defaultTimeoutSec"])
        note = f" ({method}'s defaultTimeoutSec; give the task a timeout to allow more)"
    if param is not None and timeout is not None:
        params = {**params, param: timeout}
    return timeout, note, params


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def _single(group: BaseExceptionGroup) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
