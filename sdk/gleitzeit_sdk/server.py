"""The provider side of one connection: read loop, lifecycle, one cancel scope per request.

The read loop never awaits a handler: every task request runs in its own task
of the connection's task group, so ``ping`` and ``$/cancelRequest`` are seen
while handlers run. Lifecycle requests (initialize, ping, shutdown) are
answered inline, in arrival order. A task request (or ``health``) is one task
holding one cancel scope: the handler is called directly (``MethodSpec.invoke``)
and its outcome becomes the response. (This used jsonrpcserver, whose dispatch
added a ``gather`` child task, a shield to protect it and a second signature
bind per request: ~20% of a trivial request's CPU, for binding and building a
response dict, which are a few lines here.)

What is served comes from a frozen ``ProviderDescription``: this module never
imports the ``Provider`` registry.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from anyio.abc import AnyByteReceiveStream, AnyByteSendStream, TaskStatus

from gleitzeit_sdk import codes, messages
from gleitzeit_sdk.context import LOG_LEVELS, RequestContext
from gleitzeit_sdk.description import ProviderDescription
from gleitzeit_sdk.errors import MessageTooLarge, ProtocolViolation, RpcError
from gleitzeit_sdk.framing import LineReader, LineWriter
from gleitzeit_sdk.messages import Id, Invalid, Notification, Request

Call = Callable[[RequestContext, dict[str, Any]], Awaitable[Any]]

log = logging.getLogger("gleitzeit_sdk")

# On stdin EOF, cancelled handlers get this long to send their -32800 ...
DRAIN_TIMEOUT = 0.5
# ... and the lifespan this long to clean up: together well inside the 2 s a
# host waits between closing stdin and SIGTERM.
LIFESPAN_EXIT_TIMEOUT = 1.0


class Phase(enum.Enum):
    AWAITING_INITIALIZE = "awaiting initialize"
    AWAITING_INITIALIZED = "awaiting initialized"
    READY = "ready"
    SHUT_DOWN = "shut down"


def _error(id: Id, code: int, message: str, data: Any = None) -> dict[str, Any]:
    return messages.error_response(id, RpcError(code, message, data))


class Connection:
    """Serves one host over a byte stream pair until EOF. Use ``Provider.serve``."""

    def __init__(self, provider: ProviderDescription, receive: AnyByteReceiveStream, send: AnyByteSendStream):
        self._provider = provider
        self._limits = provider.limits  # until initialize's config says otherwise (configure_limits)
        self._reader = LineReader(receive, self._limits.max_message_bytes, self._limits.max_assembled_bytes)
        self._writer = LineWriter(send)
        self._phase = Phase.AWAITING_INITIALIZE
        self._config: dict[str, Any] = {}
        self._state: Any = None
        self._log_level = "info"
        self._host_max_bytes = codes.DEFAULT_MAX_MESSAGE_BYTES
        self._host_max_assembled = 0  # the host accepts no pieces unless it says so
        self._inflight: dict[Id, anyio.CancelScope] = {}
        self._tasks_running = 0
        self._draining = False
        self._drained = anyio.Event()
        self._stop_lifespan = anyio.Event()
        self._lifespan_exited: anyio.Event | None = None
        self._read_scope = anyio.CancelScope()
        self._methods: dict[str, Call] = {name: spec.invoke for name, spec in provider.methods.items()}
        self._methods["health"] = self._health

    async def serve(self) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                with self._read_scope:
                    await self._read_loop()
            finally:
                with anyio.CancelScope(shield=True):
                    await self._wind_down()
                tg.cancel_scope.cancel()

    async def _wind_down(self) -> None:
        """Cancel what still runs, let it answer -32800, stop the lifespan; all bounded."""
        self._draining = True
        for scope in self._inflight.values():
            scope.cancel()
        with anyio.move_on_after(DRAIN_TIMEOUT):
            if self._inflight:
                await self._drained.wait()
        self._stop_lifespan.set()
        if self._lifespan_exited is not None:
            with anyio.move_on_after(LIFESPAN_EXIT_TIMEOUT):
                await self._lifespan_exited.wait()

    # -- reading ---------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            try:
                line = await self._reader.receive_message()
            except anyio.EndOfStream:
                return
            except MessageTooLarge as exc:
                limit = self._limits.max_message_bytes
                await self._send(_error(None, codes.INVALID_REQUEST, f"{exc}; message dropped", {"maxMessageBytes": limit}))
                try:
                    await self._reader.discard_line()
                except anyio.EndOfStream:
                    return
                continue
            except ProtocolViolation as exc:
                log.warning("input ended badly: %s (%r)", exc, exc.prefix)
                return
            try:
                obj = messages.decode(line)
            except ProtocolViolation as exc:
                await self._send(_error(None, codes.PARSE_ERROR, str(exc)))
                continue
            finally:
                del line  # a message in pieces can be 256 MiB: not kept while it is handled
            msg = messages.parse_message(obj)
            if isinstance(msg, Request):
                await self._on_request(msg)
            elif isinstance(msg, Notification):
                self._on_notification(msg)
            elif isinstance(msg, Invalid):
                await self._send(_error(msg.id, msg.code, msg.reason))
            else:
                log.warning("ignored a response (id %r): providers send no requests in protocol v1", msg.id)

    def _on_notification(self, note: Notification) -> None:
        if note.method == "initialized":
            if self._phase is Phase.AWAITING_INITIALIZED:
                self._phase = Phase.READY
        elif note.method == "$/cancelRequest":
            target = note.params.get("id") if isinstance(note.params, dict) else None
            if isinstance(target, (int, str)) and not isinstance(target, bool) and target in self._inflight:
                self._inflight[target].cancel()
        # every other notification, `$/` or not, is ignored: notifications are never answered

    async def _on_request(self, req: Request) -> None:
        method = req.method
        if self._phase is Phase.SHUT_DOWN:
            return await self._send(_error(req.id, codes.INVALID_REQUEST, f"{method}: the provider is shut down"))
        if method == "initialize":
            return await self._send(await self._initialize(req))
        if method == "ping":
            return await self._send(messages.response(req.id, {}))
        if self._phase is not Phase.READY:
            return await self._send(
                _error(req.id, codes.NOT_INITIALIZED, f"{method}: not initialized (send initialize, then initialized)")
            )
        if method == "shutdown":
            self._phase = Phase.SHUT_DOWN
            return await self._send(messages.response(req.id, None))
        if method not in self._methods:
            return await self._send(_error(req.id, codes.METHOD_NOT_FOUND, f"method not found: {method}"))
        if req.id in self._inflight:
            return await self._send(_error(req.id, codes.INVALID_REQUEST, f"{method}: id {req.id!r} is already in flight"))
        counted = method != "health"
        limit = self._limits.max_in_flight
        if counted and self._tasks_running >= limit:
            return await self._send(
                _error(
                    req.id,
                    codes.OVERLOADED,
                    f"{method}: overloaded, {limit} requests already in flight",
                    {"type": "Overloaded", "message": "too many requests in flight", "retryable": True, "maxInFlight": limit},
                )
            )
        params = req.params if req.params is not None else {}
        if not isinstance(params, dict):
            return await self._send(_error(req.id, codes.INVALID_PARAMS, f"invalid params for {method}: params must be an object"))
        params = dict(params)
        meta = params.pop("_meta", {})
        if not isinstance(meta, dict):
            return await self._send(_error(req.id, codes.INVALID_PARAMS, f"invalid params for {method}: _meta must be an object"))
        ctx = RequestContext(req.id, method, meta, self._config, self._state, self._notify, self._log_level)
        scope = self._inflight[req.id] = anyio.CancelScope()
        self._tasks_running += counted
        self._tg.start_soon(self._run_request, self._methods[method], scope, params, ctx, counted)

    # -- running a request ---------------------------------------------------

    async def _run_request(self, call: Call, scope: anyio.CancelScope, params: dict[str, Any],
                           ctx: RequestContext, counted: bool) -> None:
        response: dict[str, Any] | None = None
        try:
            with scope:
                response = messages.response(ctx.request_id, await call(ctx, params))
        except RpcError as exc:
            response = messages.error_response(ctx.request_id, exc)
        finally:
            ctx.close()
            del self._inflight[ctx.request_id]
            self._tasks_running -= counted
            if self._draining and not self._inflight:
                self._drained.set()
        if response is None:  # the request's scope caught its cancellation
            response = _error(ctx.request_id, codes.CANCELLED, f"{ctx.method}: request cancelled",
                              {"type": "Cancelled", "message": "request cancelled", "retryable": False})
        # With other requests in flight, the responses finishing in this loop turn share the
        # next write (each write wakes the host). Alone, no turn is spent.
        await self._send(response, linger=bool(self._inflight))

    async def _health(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {"status": "ok", "inFlight": self._tasks_running, "maxInFlight": self._limits.max_in_flight}
        check = self._provider.health_check
        if check is not None:
            try:
                info |= await check()
            except Exception as exc:
                log.exception("health check raised")
                raise RpcError(
                    codes.PROVIDER_ERROR,
                    f"health check failed: {type(exc).__name__}: {exc}",
                    {"type": type(exc).__name__, "message": str(exc), "retryable": True},
                ) from None
        return info

    # -- lifecycle -------------------------------------------------------

    async def _initialize(self, req: Request) -> dict[str, Any]:
        if self._phase is not Phase.AWAITING_INITIALIZE:
            return _error(req.id, codes.INVALID_REQUEST, "initialize: already initialized")
        params = req.params if isinstance(req.params, dict) else {}
        requested = params.get("protocolVersion")
        if requested not in codes.SUPPORTED_VERSIONS:
            return _error(
                req.id,
                codes.INVALID_PARAMS,
                f"initialize: unsupported protocolVersion {requested!r}; supported: {', '.join(codes.SUPPORTED_VERSIONS)}",
                {"supported": list(codes.SUPPORTED_VERSIONS), "requested": requested},
            )
        config = params.get("config", {})
        level = params.get("logLevel", "info")
        limits = params.get("limits", {})
        if not isinstance(config, dict) or not isinstance(limits, dict):
            return _error(req.id, codes.INVALID_PARAMS, "initialize: config and limits must be objects")
        if level not in LOG_LEVELS:
            return _error(req.id, codes.INVALID_PARAMS, f"initialize: logLevel must be one of {', '.join(LOG_LEVELS)}")
        host_max = limits.get("maxMessageBytes", codes.DEFAULT_MAX_MESSAGE_BYTES)
        if not isinstance(host_max, int) or isinstance(host_max, bool) or host_max < 1024:
            return _error(req.id, codes.INVALID_PARAMS, "initialize: limits.maxMessageBytes must be an integer >= 1024")
        host_assembled = limits.get("maxAssembledBytes", 0)
        if not isinstance(host_assembled, int) or isinstance(host_assembled, bool) or host_assembled < 0:
            return _error(req.id, codes.INVALID_PARAMS, "initialize: limits.maxAssembledBytes must be an integer >= 0")
        lifespan = self._provider.lifespan
        try:
            limits = self._provider.effective_limits(config)
            if lifespan is not None:
                self._lifespan_exited = anyio.Event()
                self._state = await self._tg.start(self._run_lifespan, lifespan(config))
        except Exception as exc:
            log.exception("provider start-up failed")
            return _error(
                req.id,
                codes.PROVIDER_ERROR,
                f"initialize: provider start-up failed: {type(exc).__name__}: {exc}",
                {"type": type(exc).__name__, "message": str(exc), "retryable": False},
            )
        self._config, self._log_level, self._host_max_bytes = config, level, host_max
        self._host_max_assembled = host_assembled
        self._limits = limits
        self._reader.max_bytes, self._reader.max_assembled_bytes = limits.max_message_bytes, limits.max_assembled_bytes
        self._phase = Phase.AWAITING_INITIALIZED
        return messages.response(req.id, self._provider.initialize_result(limits))

    async def _run_lifespan(self, cm: AbstractAsyncContextManager[Any], *, task_status: TaskStatus[Any]) -> None:
        """Own task, so the lifespan's cancel scopes and task groups nest cleanly."""
        assert self._lifespan_exited is not None
        started = False
        try:
            async with cm as state:
                task_status.started(state)
                started = True
                await self._stop_lifespan.wait()
        except Exception:
            if not started:
                raise  # tg.start() hands it to _initialize, which answers with an error
            log.exception("lifespan clean-up failed")
        finally:
            self._lifespan_exited.set()

    # -- writing ---------------------------------------------------------

    async def _notify(self, method: str, params: dict[str, Any]) -> None:
        await self._send(messages.notification(method, params))

    async def _send(self, obj: dict[str, Any], *, linger: bool = False) -> None:
        """Write one message (``linger``: see ``LineWriter.send_line``). A response that
        cannot be sent as is becomes a -32603 error."""
        try:
            data = messages.encode(obj)
        except (TypeError, ValueError) as exc:  # not JSON (a set, a datetime, NaN...)
            if "method" in obj:
                raise  # a notification: the handler that sent it gets the exception
            text = f"the result is not JSON: {exc}"
            data = messages.encode(
                _error(obj.get("id"), codes.INTERNAL_ERROR, text, {"type": type(exc).__name__, "message": text, "retryable": False})
            )
        if len(data) > max(self._host_max_bytes, self._host_max_assembled):
            if "method" in obj:
                log.warning("dropped a %s notification of %d bytes (host limit %d)", obj["method"], len(data), self._host_max_bytes)
                return
            text = (f"response of {len(data)} bytes exceeds the host's maxMessageBytes ({self._host_max_bytes})"
                    + (f" and maxAssembledBytes ({self._host_max_assembled})" if self._host_max_assembled else ""))
            data = messages.encode(
                _error(obj.get("id"), codes.INTERNAL_ERROR, text, {"type": "MessageTooLarge", "message": text, "retryable": False})
            )
        try:
            await self._writer.send_message(data, self._host_max_bytes, linger=linger)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            log.warning("the host stopped reading; closing the connection")
            self._read_scope.cancel()
