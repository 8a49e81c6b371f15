"""The thin seam to jsonrpcserver: the only module that imports it.

We hand it an already parsed and checked request (our own deserializer and a
no-op validator: its schema check answers -32600 without the id and rejects
extra members), an explicit ``methods`` dict (never its global registry) and
the RequestContext as ``context``. It binds, calls and builds the response.
Its ``asyncio.gather`` makes this asyncio-only, and runs the handler in a child
task: cancelling the caller would make gather re-cancel that child natively,
through anyio shields. So the server never cancels the caller; it cancels the
handler inside its own task (``server.Connection._cancellable``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

with warnings.catch_warnings():  # jsonrpcserver 5 uses importlib.resources.read_text at import
    warnings.simplefilter("ignore", DeprecationWarning)
    from jsonrpcserver import JsonRpcError, Result, Success, async_dispatch_to_serializable
    from jsonrpcserver.sentinels import NODATA

__all__ = ("JsonRpcError", "Result", "Success", "dispatch", "to_wire_data")


def to_wire_data(data: Any) -> Any:
    """jsonrpcserver omits ``data`` only for its sentinel; ours uses None for 'no data'."""
    return NODATA if data is None else data


def _no_validation(_: Any) -> None:
    return None


async def dispatch(request: dict[str, Any], methods: dict[str, Callable[..., Any]], context: Any) -> dict[str, Any]:
    """Run one request (a dict with jsonrpc/id/method/params) and return its response dict."""
    response = await async_dispatch_to_serializable(
        "",
        methods=methods,
        context=context,
        deserializer=lambda _: request,
        validator=_no_validation,
    )
    assert isinstance(response, dict), "a request with an id always gets one response"
    return response
