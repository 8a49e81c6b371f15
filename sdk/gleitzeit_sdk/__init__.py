"""Gleitzeit provider SDK: the wire protocol v1 and helpers for provider authors.

The whole author surface is re-exported here; see sdk/README.md and sdk/PROTOCOL.md.
"""

from gleitzeit_sdk.context import RequestContext
from gleitzeit_sdk.errors import MessageTooLarge, ProtocolViolation, RpcError, TaskFailed
from gleitzeit_sdk.method import MethodSpec
from gleitzeit_sdk.provider import Provider

__all__ = (
    "MessageTooLarge",
    "MethodSpec",
    "Provider",
    "ProtocolViolation",
    "RequestContext",
    "RpcError",
    "TaskFailed",
)
