"""RequestContext: what a handler knows about its request and how it talks back while running."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gleitzeit_sdk.messages import Id

# RFC 5424 severities, least severe first (as in MCP logging).
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
OUTPUT_STREAMS = ("stdout", "stderr", "delta")

Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(eq=False)
class RequestContext:
    """Passed as the first argument to every handler.

    ``progress``/``output`` go out only if the host gave a ``_meta.progressToken``
    and only until the final response is sent; non-increasing progress values are
    dropped, because the protocol promises the host a strictly increasing series.
    """

    request_id: Id
    method: str
    meta: dict[str, Any]
    config: dict[str, Any]
    state: Any  # what the provider's lifespan yielded, or None
    _notify: Notify = field(repr=False)
    _log_level: str = "info"
    _last_progress: float | None = field(default=None, repr=False)
    _seq: int = field(default=0, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def progress_token(self) -> str | int | None:
        return self.meta.get("progressToken")

    @property
    def attempt(self) -> int:
        return int(self.meta.get("attempt", 1))

    @property
    def task_id(self) -> str | None:
        return self.meta.get("taskId")

    @property
    def run_id(self) -> str | None:
        return self.meta.get("runId")

    @property
    def traceparent(self) -> str | None:
        return self.meta.get("traceparent")

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress_token is None or self._closed:
            return
        if self._last_progress is not None and progress <= self._last_progress:
            return
        self._last_progress = progress
        params: dict[str, Any] = {"token": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self._notify("$/progress", params)

    async def output(self, stream: str, data: str) -> None:
        """A chunk of streamed output: ``stdout``/``stderr`` text or an LLM token ``delta``."""
        if stream not in OUTPUT_STREAMS:
            raise ValueError(f"output stream must be one of {OUTPUT_STREAMS}, not {stream!r}")
        if self.progress_token is None or self._closed:
            return
        seq, self._seq = self._seq, self._seq + 1
        await self._notify("$/output", {"token": self.progress_token, "seq": seq, "stream": stream, "data": data})

    async def log(self, level: str, message: str, *, logger: str | None = None, data: Any = None) -> None:
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {LOG_LEVELS}, not {level!r}")
        if LOG_LEVELS.index(level) < LOG_LEVELS.index(self._log_level):
            return
        params: dict[str, Any] = {"level": level, "message": message, "requestId": self.request_id}
        if logger is not None:
            params["logger"] = logger
        if data is not None:
            params["data"] = data
        await self._notify("$/log", params)

    def close(self) -> None:
        """Called by the server right before the final response: nothing per-token after it."""
        self._closed = True
