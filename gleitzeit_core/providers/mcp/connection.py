"""The MCP dialect of the host's connection: MCP on the wire, Gleitzeit protocol v1
towards the actor.

``ProviderActor`` drives every provider with ``initialize``, task requests,
``ping``, ``health``, ``shutdown`` and ``cancel``. This class answers those
calls by speaking MCP (revision 2026-07-28, with the legacy ``initialize``
handshake as fallback), so an MCP server runs under the same process, framing
and supervision code as a native provider: crash budget, timeouts, cancel,
idle pings and workers apply unchanged. See docs/mcp.md for why.
"""

from __future__ import annotations

import collections
import enum
import json
import logging
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream

from gleitzeit_core._version import __version__
from gleitzeit_core.providers.connection import ClientConnection, NotificationHandler
from gleitzeit_core.providers.mcp.tools import descriptors, task_result
from gleitzeit_sdk import codes, messages
from gleitzeit_sdk.errors import RpcError

log = logging.getLogger("gleitzeit.mcp")

#: The revisions this host speaks, newest first. Modern ones carry version and
#: capabilities in every request's ``_meta``; legacy ones open with ``initialize``.
MODERN_VERSIONS = ("2026-07-28",)
LEGACY_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
#: UnsupportedProtocolVersionError: a modern server that wants another version.
UNSUPPORTED_VERSION = -32022
CLIENT_INFO = {"name": "gleitzeit", "version": __version__}
_META = "io.modelcontextprotocol/"
#: Bounds on what a server's tools/list may make us hold.
MAX_TOOL_PAGES = 100
MAX_TOOLS = 10_000
#: MCP announces no concurrency limit; the manifest's max_in_flight (default 1) decides.
UNLIMITED = 1 << 16
#: Non-JSON-RPC stdout lines logged at warning level before the rest go to debug.
NOISE_WARNINGS = 10
#: Ids of cancelled requests whose late responses are dropped quietly.
ABANDONED_KEPT = 1024


class Era(enum.Enum):
    MODERN = "modern"  # 2026-07-28: server/discover, per-request _meta
    LEGACY = "legacy"  # up to 2025-11-25: initialize handshake


class McpConnection(ClientConnection):
    """One MCP stdio server. ``prefix`` is the manifest name: tool ``t`` is method ``prefix/t``.

    ``probe_timeout`` bounds the ``server/discover`` probe: a server that does
    not answer it in time is sent ``initialize``, as the spec says, and one that
    refuses that is taken at its late answer to the probe (a slow modern server).
    """

    def __init__(self, receive: ByteReceiveStream, send: ByteSendStream, *, prefix: str, probe_timeout: float,
                 on_notification: NotificationHandler | None = None):
        super().__init__(receive, send, on_notification=on_notification)
        self._prefix = prefix
        self._probe_timeout = probe_timeout
        self.era: Era | None = None
        self.version = ""
        self._server_info: dict[str, Any] = {}
        self._tools: dict[str, str] = {}  # method → tool name
        self._abandoned: collections.deque[int] = collections.deque(maxlen=ABANDONED_KEPT)
        self._noise = 0

    # -- what the actor calls -------------------------------------------------------
    async def call(self, method: str, params: dict[str, Any] | None = None, *,
                   on_notification: NotificationHandler | None = None, token: Any = None,
                   on_sent: Any = None) -> Any:
        if method == "initialize":
            return await self._open()
        if method == "ping":
            return await self._ping()
        if method == "health":
            return {"status": "ok", "kind": "mcp", "era": self.era.value if self.era else None,
                    "protocolVersion": self.version, "serverInfo": self._server_info, "tools": len(self._tools)}
        if method == "shutdown":
            return None  # MCP has no shutdown request: closing stdin is the signal
        if method in self._tools:
            args = dict(params or {})
            meta = args.pop("_meta", None) or {}
            passed = {k: meta[k] for k in ("progressToken", "traceparent", "tracestate") if k in meta}
            result = await super().call(
                "tools/call", {"name": self._tools[method], "arguments": args, "_meta": self._meta(passed)},
                on_notification=on_notification, token=token, on_sent=on_sent)
            return task_result(result)
        raise RpcError(codes.METHOD_NOT_FOUND, f"MCP server {self._prefix!r} has no tool for {method!r}")

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        if method == "initialized":
            return  # the legacy handshake sent notifications/initialized already
        await super().notify(method, params)

    async def cancel(self, req_id: int) -> None:
        """notifications/cancelled, and the request fails now: MCP sends no final response."""
        self._abandoned.append(req_id)
        try:
            await super().notify("notifications/cancelled", {"requestId": req_id, "reason": "cancelled by gleitzeit"})
        finally:
            self.abandon(req_id, RpcError(codes.CANCELLED, "cancelled"))

    # -- opening: era detection, tools ------------------------------------------------
    async def _open(self) -> dict[str, Any]:
        await self._negotiate()
        methods, self._tools = descriptors(self._prefix, await self._list_tools())
        return {
            "protocolVersion": codes.PROTOCOL_VERSION,
            "provider": {"name": str(self._server_info.get("name") or self._prefix),
                         "version": str(self._server_info.get("version") or "")},
            "protocols": [f"{self._prefix}/v1"],
            "capabilities": {"cancellation": True, "progress": True, "output": False, "logging": True,
                             "concurrency": {"maxInFlight": UNLIMITED}},
            "methods": methods,
            "mcp": {"era": self.era.value if self.era else None, "protocolVersion": self.version,
                    "serverInfo": self._server_info},
        }

    async def _negotiate(self) -> None:
        """Probe with server/discover; a DiscoverResult or a modern error means modern, anything else legacy."""
        sent: list[int] = []
        try:
            with anyio.fail_after(self._probe_timeout):
                found = await super().call("server/discover", {"_meta": self._meta({}, MODERN_VERSIONS[0])},
                                           on_sent=sent.append)
        except TimeoutError:
            return await self._after_silence(sent)
        except RpcError as exc:
            if exc.code != UNSUPPORTED_VERSION:
                return await self._initialize(LEGACY_VERSIONS[0])
            return await self._unsupported(exc)
        await self._discovered(found)

    async def _after_silence(self, sent: list[int]) -> None:
        """The probe went unanswered for ``probe_timeout``. A legacy server may ignore it
        before ``initialize``; a modern one may only be slow to start (``uvx`` fetching its
        package, a loaded machine) and refuses ``initialize`` once it reads it. So
        ``initialize`` goes out: accepted, the server is legacy; refused, the probe's late
        answer (still pending, bounded by the actor's startup timeout) decides."""
        log.info("MCP server %s did not answer server/discover within %g s; trying the initialize handshake",
                 self._prefix, self._probe_timeout)
        try:
            await self._initialize(LEGACY_VERSIONS[0])
        except RpcError as refused:
            if not sent:
                raise
            try:
                found = await self.settle(sent[0])
            except RpcError as exc:
                if exc.code != UNSUPPORTED_VERSION:
                    raise refused from None
                return await self._unsupported(exc)
            return await self._discovered(found)
        for req_id in sent:  # a legacy server: the probe's late answer, if any, is dropped quietly
            self._abandoned.append(req_id)
            self.forget(req_id)

    async def _unsupported(self, exc: RpcError) -> None:
        """A modern server that wants another version names the ones it speaks."""
        supported = exc.data.get("supported") if isinstance(exc.data, dict) else None
        await self._choose(supported, discovered={})

    async def _discovered(self, found: Any) -> None:
        if not isinstance(found, dict) or not isinstance(found.get("supportedVersions"), list):
            return await self._initialize(LEGACY_VERSIONS[0])
        meta = found.get("_meta")
        info = meta.get(_META + "serverInfo") if isinstance(meta, dict) else None
        await self._choose(found["supportedVersions"], discovered=info if isinstance(info, dict) else {})

    async def _choose(self, supported: Any, *, discovered: dict[str, Any]) -> None:
        offered = [v for v in supported if isinstance(v, str)] if isinstance(supported, list) else []
        modern = next((v for v in MODERN_VERSIONS if v in offered), None)
        if modern is not None:
            self.era, self.version, self._server_info = Era.MODERN, modern, discovered
            return
        legacy = next((v for v in LEGACY_VERSIONS if v in offered), None)
        if legacy is not None:
            return await self._initialize(legacy)
        raise RpcError(codes.INVALID_REQUEST,
                       f"no common MCP version: the server speaks {', '.join(offered) or 'none it names'}; "
                       f"gleitzeit speaks {', '.join(MODERN_VERSIONS + LEGACY_VERSIONS)}")

    async def _initialize(self, version: str) -> None:
        result = await super().call("initialize", {"protocolVersion": version, "capabilities": {},
                                                   "clientInfo": CLIENT_INFO})
        chosen = result.get("protocolVersion") if isinstance(result, dict) else None
        if chosen not in LEGACY_VERSIONS:
            raise RpcError(codes.INVALID_REQUEST, f"the MCP server answered initialize with version {chosen!r}; "
                           f"gleitzeit speaks {', '.join(LEGACY_VERSIONS)}")
        await super().notify("notifications/initialized")
        info = result.get("serverInfo")
        self.era, self.version, self._server_info = Era.LEGACY, str(chosen), info if isinstance(info, dict) else {}

    async def _list_tools(self) -> list[Any]:
        tools: list[Any] = []
        cursor: Any = None
        for _ in range(MAX_TOOL_PAGES):
            params: dict[str, Any] = {"_meta": self._meta({})}
            if cursor is not None:
                params["cursor"] = cursor
            try:
                page = await super().call("tools/list", params)
            except RpcError as exc:
                if exc.code == codes.METHOD_NOT_FOUND and not tools:
                    return []  # a server without tools
                raise
            listed = page.get("tools") if isinstance(page, dict) else None
            if not isinstance(listed, list):
                raise RpcError(codes.INVALID_REQUEST, "the MCP server's tools/list result has no 'tools' list")
            tools += listed[: MAX_TOOLS - len(tools)]
            cursor = page.get("nextCursor")
            if cursor is None or len(tools) >= MAX_TOOLS:
                return tools
        log.warning("MCP server %s: tools/list still paging after %d pages; using what came", self._prefix,
                    MAX_TOOL_PAGES)
        return tools

    async def _ping(self) -> Any:
        # Revision 2026-07-28 removed ping; server/discover is the cheap request every modern server has.
        if self.era is Era.MODERN:
            return await super().call("server/discover", {"_meta": self._meta({})})
        return await super().call("ping", {})

    def _meta(self, extra: dict[str, Any], version: str | None = None) -> dict[str, Any]:
        """A request's _meta: modern requests carry version, capabilities and identity in it."""
        if version is None and self.era is not Era.MODERN:
            return extra
        return {_META + "protocolVersion": version or self.version, _META + "clientCapabilities": {},
                _META + "clientInfo": CLIENT_INFO, **extra}

    # -- what the server sends --------------------------------------------------------
    def _decode(self, line: bytes) -> messages.Message:
        # Banners and plain log lines: noise. A line that starts like an object gets the
        # full checks (bad JSON, too deep: a protocol violation, as for any provider).
        if not line.lstrip().startswith(b"{"):
            return messages.Invalid(None, f"not a JSON object: {line[:80]!r}")
        return super()._decode(line)

    def _handle(self, msg: messages.Message) -> None:
        if isinstance(msg, messages.Invalid) and not (isinstance(msg.id, int) and self._awaiting(msg.id)):
            # Banners and logs on stdout break the spec but are common: log, drop, go on.
            self._noise += 1
            level = logging.WARNING if self._noise <= NOISE_WARNINGS else logging.DEBUG
            log.log(level, "MCP server %s wrote a line on stdout that is not JSON-RPC (dropped): %s", self._prefix,
                    msg.reason)
            return
        if isinstance(msg, (messages.Response, messages.ErrorResponse)) and msg.id in self._abandoned:
            return  # the answer to a request we cancelled: MCP lets it race the cancel
        if isinstance(msg, messages.Notification):
            msg = self._translate(msg)
        super()._handle(msg)

    @staticmethod
    def _translate(msg: messages.Notification) -> messages.Notification:
        params = msg.params if isinstance(msg.params, dict) else {}
        if msg.method == "notifications/progress":
            return messages.Notification("$/progress", {
                "token": params.get("progressToken"),
                **{k: params[k] for k in ("progress", "total", "message") if k in params}})
        if msg.method == "notifications/message":
            data = params.get("data")
            return messages.Notification("$/log", {
                "level": params.get("level"),
                "message": data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)[:2000]})
        return msg
