"""Host side of one JSON-RPC connection: ids, correlation, the read loop.

Sits on the transport (``gleitzeit_sdk.framing``) and knows JSON-RPC, not
tasks or processes. Ids come from a counter owned by this connection; messages
are built and classified by ``gleitzeit_sdk.messages``, the wire modules the
provider side uses too (they import neither jsonrpcserver nor jsonschema).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream

from gleitzeit_sdk import jsonlimits, messages
from gleitzeit_sdk.codes import DEFAULT_MAX_ASSEMBLED_BYTES, DEFAULT_MAX_MESSAGE_BYTES
from gleitzeit_sdk.errors import ProtocolViolation
from gleitzeit_sdk.framing import LineReader, LineWriter

log = logging.getLogger("gleitzeit.connection")

NotificationHandler = Callable[[str, dict[str, Any]], None]


class ConnectionClosed(Exception):
    """The peer went away (EOF) or broke the protocol; ``reason`` says which."""

    def __init__(self, reason: str, violation: ProtocolViolation | None = None):
        super().__init__(reason)
        self.reason = reason
        self.violation = violation


class RequestNotSent(Exception):
    """A request that cannot go on the wire (its params are not JSON); nothing was sent."""


class RequestTooLarge(RequestNotSent):
    """A request would exceed the provider's announced ``maxMessageBytes``; it was not sent."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"{size} bytes, over the provider's {limit}-byte maxMessageBytes")
        self.size, self.limit = size, limit


class ResponseRejected(Exception):
    """The response to this request broke the protocol (e.g. a value outside the limits);
    the connection goes on, only this request fails."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Pending:
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: Any = None
    error: BaseException | None = None
    sent: bool = False  # its bytes are committed to the wire
    token: Any = None  # the notification token routed to its handler

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.outcome


class ClientConnection:
    """Many requests in flight, correlated by id; notifications routed by token.

    ``run()`` is the read loop: start it in a task group; it returns when the
    peer closes or breaks the protocol, after failing every pending request.
    """

    def __init__(
        self,
        receive: ByteReceiveStream,
        send: ByteSendStream,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_assembled_bytes: int = DEFAULT_MAX_ASSEMBLED_BYTES,
        on_notification: NotificationHandler | None = None,
    ):
        self._reader = LineReader(receive, max_message_bytes, max_assembled_bytes)
        self._writer = LineWriter(send)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._token_handlers: dict[Any, NotificationHandler] = {}
        self._on_notification = on_notification
        self.closed: ConnectionClosed | None = None
        #: The provider's announced limit (set after the handshake); no line we send is longer.
        self.peer_max_bytes: int | None = None
        #: The largest message it accepts in pieces (PROTOCOL.md §1.1); 0: none.
        self.peer_max_assembled: int = 0

    # -- read loop --------------------------------------------------------------
    async def run(self) -> None:
        try:
            while True:
                line = await self._reader.receive_message()
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("← %s", line[:2000].decode("utf-8", "replace"))
                msg = self._decode(line)
                del line  # a message in pieces can be 256 MiB: not kept while it is handled
                self._handle(msg)
        except anyio.EndOfStream:
            self._close(ConnectionClosed("the provider closed its stdout"))
        except ProtocolViolation as exc:
            log.warning("protocol violation: %s: %r", exc, exc.prefix)
            self._close(ConnectionClosed(f"protocol violation: {exc} (line starts {exc.prefix!r})", exc))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            self._close(ConnectionClosed(f"connection lost: {exc or type(exc).__name__}"))
        finally:
            # Cancelled from outside (owner shutting down): nobody may wait forever.
            self._close(ConnectionClosed("connection closed by the host"))

    def _decode(self, line: bytes) -> messages.Message:
        """One line as a message; a line that is not JSON raises ProtocolViolation (a dialect may relax this)."""
        return messages.parse_message(messages.decode(line))

    def _handle(self, msg: messages.Message) -> None:
        if isinstance(msg, messages.ErrorResponse) and msg.id is None:
            # The provider could not read one of our lines (PROTOCOL.md §4): which
            # request it was is unknown, so no request may wait for it. Fatal.
            raise ProtocolViolation(f"error response with id null ({msg.error.code}: {msg.error.message})")
        if isinstance(msg, messages.Invalid) and isinstance(msg.id, int) and self._awaiting(msg.id):
            pending = self._pending[msg.id]
            pending.error = ResponseRejected(msg.reason)
            pending.done.set()
            return
        if isinstance(msg, (messages.Response, messages.ErrorResponse)):
            pending = self._pending[msg.id] if isinstance(msg.id, int) and self._awaiting(msg.id) else None
            if pending is None:
                log.warning("dropping response to unknown id %r", msg.id)
                return
            if isinstance(msg, messages.Response):
                pending.outcome = msg.result
            else:
                pending.error = msg.error
            pending.done.set()
        elif isinstance(msg, messages.Notification):
            params = msg.params if isinstance(msg.params, dict) else {}
            handler = self._token_handlers.get(params.get("token"))
            if handler is None and msg.method == "$/log":  # a log record names its request, not a token
                handler = self._request_handler(params.get("requestId"))
            if handler is not None:
                handler(msg.method, params)
            elif self._on_notification is not None:
                self._on_notification(msg.method, params)
        elif isinstance(msg, messages.Request):
            # Protocol v1: providers send no requests. Logged, not fatal.
            log.warning("ignoring a request from the provider: %r", msg.method)
        else:
            raise ProtocolViolation(f"invalid JSON-RPC message: {msg.reason}")

    def _request_handler(self, req_id: Any) -> NotificationHandler | None:
        """The notification handler of the pending request ``req_id`` (None if it has none)."""
        pending = self._pending.get(req_id) if isinstance(req_id, int) else None
        return None if pending is None or pending.token is None else self._token_handlers.get(pending.token)

    def _awaiting(self, req_id: int) -> bool:
        """Whether a request with this id waits for its response (entries stay until ``forget``)."""
        pending = self._pending.get(req_id)
        return pending is not None and not pending.done.is_set()

    def _close(self, reason: ConnectionClosed) -> None:
        if self.closed is None:
            self.closed = reason
        for pending in self._pending.values():
            if not pending.done.is_set():
                pending.error = self.closed
                pending.done.set()

    # -- requests ---------------------------------------------------------------
    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self._send(messages.notification(method, params))

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        on_notification: NotificationHandler | None = None,
        token: Any = None,
        on_sent: Callable[[int], None] | None = None,
    ) -> Any:
        """Send a request and wait for its response, in the caller's task.

        Raises RpcError for an error response, ConnectionClosed when the peer
        goes away first, RequestTooLarge (nothing sent) for a request over the
        peer's limit, ResponseRejected for an unusable response. Cancelling the caller does not tell the peer: use
        ``cancel(id)`` (the id is handed to ``on_sent`` once the request is on the wire). A caller
        that passed ``on_sent`` and is cancelled after it was called leaves the request pending:
        ``settle(id)`` then waits for its final response (and must be called, or ``forget(id)``).
        """
        if self.closed is not None:
            raise self.closed
        req_id = next(self._ids)
        msg = messages.request(req_id, method, params)
        try:
            data = messages.encode(msg)
            jsonlimits.check(msg)
        except (TypeError, ValueError) as exc:  # ValueRejected is a ValueError
            raise RequestNotSent(f"the parameters are not sendable JSON: {exc}") from None
        limit = self._send_limit()
        if limit is not None and len(data) > limit:
            raise RequestTooLarge(len(data), limit)
        pending = self._pending[req_id] = _Pending()
        if token is not None and on_notification is not None:
            self._token_handlers[token] = on_notification
            pending.token = token
        try:
            # With other requests in flight, those sent in this loop turn share the next write.
            await self._send_bytes(data, lambda: self._sent(pending, req_id, on_sent), linger=len(self._pending) > 1)
            await pending.done.wait()
        except BaseException:
            if not (pending.sent and on_sent is not None and not pending.done.is_set()):
                self.forget(req_id)
            raise
        self.forget(req_id)
        return pending.result()

    @staticmethod
    def _sent(pending: _Pending, req_id: int, on_sent: Callable[[int], None] | None) -> None:
        pending.sent = True
        if on_sent is not None:
            on_sent(req_id)

    async def settle(self, req_id: int) -> Any:
        """The final response of a sent request whose caller was cancelled (see ``call``)."""
        pending = self._pending.get(req_id)
        if pending is None:
            raise self.closed or ConnectionClosed(f"request {req_id} is not pending")
        await pending.done.wait()
        self.forget(req_id)
        return pending.result()

    def forget(self, req_id: int) -> None:
        """Stop tracking a request (its late response, if any, is dropped)."""
        pending = self._pending.pop(req_id, None)
        if pending is not None and pending.token is not None:
            self._token_handlers.pop(pending.token, None)

    def abandon(self, req_id: int, error: BaseException) -> None:
        """Fail one pending request now, without its response (a late one is dropped)."""
        pending = self._pending.get(req_id)
        if pending is not None and not pending.done.is_set():
            pending.error = error
            pending.done.set()

    async def cancel(self, req_id: int) -> None:
        await self._send(messages.notification("$/cancelRequest", {"id": req_id}))

    def _send_limit(self) -> int | None:
        """The longest message the provider takes: one line, or assembled from pieces."""
        if self.peer_max_bytes is None:
            return None
        return max(self.peer_max_bytes, self.peer_max_assembled)

    async def _send(self, obj: dict[str, Any]) -> None:
        await self._send_bytes(messages.encode(obj))

    async def _send_bytes(self, data: bytes, started: Callable[[], None] | None = None, *,
                          linger: bool = False) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("→ %s", data[:2000].decode("utf-8", "replace"))
        try:
            if self.peer_max_bytes is not None and self.peer_max_assembled:
                await self._writer.send_message(data, self.peer_max_bytes, started, linger=linger)
            else:
                await self._writer.send_line(data, started, linger=linger)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError) as exc:
            self._close(ConnectionClosed(f"cannot write to the provider: {exc or type(exc).__name__}"))
            raise self.closed from None  # type: ignore[misc]
        finally:
            if self._writer.broken and self.closed is None:
                # Cancelled between the pieces of a message: nothing more can be sent. Closing the
                # provider's stdin makes it exit, so its incarnation ends like a crash.
                self._close(ConnectionClosed("a message in pieces was cut off by a cancel"))
                with anyio.CancelScope(shield=True):
                    await self.aclose()

    async def aclose(self) -> None:
        try:
            await self._writer.aclose()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
