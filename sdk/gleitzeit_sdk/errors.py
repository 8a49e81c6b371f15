"""Errors that travel on the wire, apart from programmer errors in the SDK."""

from __future__ import annotations

from typing import Any

from gleitzeit_sdk import codes


class RpcError(Exception):
    """A JSON-RPC error object: raise it from a handler to answer with it."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err

    @classmethod
    def from_wire(cls, err: dict[str, Any]) -> "RpcError":
        return cls(int(err.get("code", codes.INTERNAL_ERROR)), str(err.get("message", "")), err.get("data"))

    @property
    def retryable(self) -> bool:
        if isinstance(self.data, dict) and "retryable" in self.data:
            return bool(self.data["retryable"])
        return self.code in (codes.OVERLOADED, codes.PROVIDER_ERROR, codes.INTERNAL_ERROR)


class TaskFailed(RpcError):
    """The task ran and failed (user code raised, model refused, ...)."""

    def __init__(
        self,
        message: str,
        *,
        type: str = "TaskFailed",
        retryable: bool = True,
        details: Any = None,
    ):
        data: dict[str, Any] = {"type": type, "message": message, "retryable": retryable}
        if details is not None:
            data["details"] = details
        super().__init__(codes.TASK_FAILED, message, data)


class ProtocolViolation(Exception):
    """The peer broke framing or JSON-RPC rules (garbage line, oversized line...)."""

    def __init__(self, message: str, raw: bytes = b""):
        super().__init__(message)
        self.raw = raw

    @property
    def prefix(self) -> str:
        """The first bytes of the offending line, printable, for logs."""
        return self.raw[:120].decode("utf-8", "replace")


class MessageTooLarge(ProtocolViolation):
    """A line over the peer's ``maxMessageBytes``; its bytes are not trusted (not even the id)."""
