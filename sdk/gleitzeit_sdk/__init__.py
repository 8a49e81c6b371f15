"""Gleitzeit provider SDK: the wire protocol v1 and helpers for provider authors.

The whole author surface is re-exported here (``from gleitzeit_sdk import Provider``);
see sdk/README.md and sdk/PROTOCOL.md. The names load lazily (PEP 562), so the
wire modules (``framing``, ``messages``, ``codes``, ``jsonlimits``, ``errors``)
can be imported, by the host for one, without the authoring side and jsonschema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gleitzeit_sdk.context import RequestContext
    from gleitzeit_sdk.description import Limits
    from gleitzeit_sdk.errors import MessageTooLarge, ProtocolViolation, RpcError, TaskFailed
    from gleitzeit_sdk.method import MethodSpec
    from gleitzeit_sdk.provider import Provider

_HOMES = {
    "Limits": "gleitzeit_sdk.description",
    "MessageTooLarge": "gleitzeit_sdk.errors",
    "MethodSpec": "gleitzeit_sdk.method",
    "Provider": "gleitzeit_sdk.provider",
    "ProtocolViolation": "gleitzeit_sdk.errors",
    "RequestContext": "gleitzeit_sdk.context",
    "RpcError": "gleitzeit_sdk.errors",
    "TaskFailed": "gleitzeit_sdk.errors",
}

__all__ = tuple(sorted(_HOMES))


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'gleitzeit_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
