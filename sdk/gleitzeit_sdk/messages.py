"""Protocol layer: JSON-RPC 2.0 messages as typed values, and their wire form.

``parse_message`` classifies one decoded line; it never raises for a peer's
mistake in a *message* (that becomes an ``Invalid`` value so the connection can
answer -32600 and go on). Undecodable bytes raise ``ProtocolViolation``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Union

from gleitzeit_sdk import codes, jsonlimits
from gleitzeit_sdk.errors import ProtocolViolation, RpcError

Id = Union[int, str, None]


@dataclass(frozen=True)
class Request:
    id: Id
    method: str
    params: dict[str, Any] | list[Any] | None = None


@dataclass(frozen=True)
class Notification:
    method: str
    params: dict[str, Any] | list[Any] | None = None


@dataclass(frozen=True)
class Response:
    id: Id
    result: Any


@dataclass(frozen=True)
class ErrorResponse:
    id: Id
    error: RpcError


@dataclass(frozen=True)
class Invalid:
    """A well-formed JSON value that is not a valid JSON-RPC message."""

    id: Id
    reason: str
    code: int = codes.INVALID_REQUEST


Message = Union[Request, Notification, Response, ErrorResponse, Invalid]

_NO_ID = object()


class Rejected:
    """A decoded line holding a value outside the limits (``jsonlimits``); passed to
    ``parse_message``, which answers it as an ``Invalid`` message with the id when readable."""

    __slots__ = ("obj", "reason")

    def __init__(self, obj: Any, reason: str):
        self.obj, self.reason = obj, reason


def decode(line: bytes) -> Any:
    """One line's JSON value. Raises ``ProtocolViolation`` for bytes that are not
    JSON text (or nest too deep to decode at all); a value that decodes but breaks
    a limit comes back wrapped in ``Rejected``."""
    try:
        text = line.decode("utf-8")
        if text.startswith("\ufeff"):
            raise ProtocolViolation("line starts with a byte-order mark", line)
        made = jsonlimits.placeholders_made()
        obj = jsonlimits.DECODER.decode(text)
    except UnicodeDecodeError as exc:
        raise ProtocolViolation(f"line is not valid UTF-8 ({exc.reason})", line) from None
    except json.JSONDecodeError as exc:
        raise ProtocolViolation(f"line is not JSON ({exc.msg} at column {exc.colno})", line) from None
    except RecursionError:
        raise ProtocolViolation(f"line nests deeper than {jsonlimits.MAX_DEPTH} levels", line) from None
    if jsonlimits.needs_check(line, made):
        try:
            jsonlimits.check(obj)
        except jsonlimits.ValueRejected as exc:
            return Rejected(obj, str(exc))
    return obj


def _readable_id(obj: Any) -> Id:
    raw = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        return None
    if isinstance(raw, int) and abs(raw) >= 1 << 63:
        return None
    if isinstance(raw, str):
        try:
            jsonlimits.check(raw)
        except jsonlimits.ValueRejected:  # a lone surrogate: an id we could not send back
            return None
    return raw


def parse_message(obj: Any) -> Message:
    if isinstance(obj, Rejected):
        return Invalid(_readable_id(obj.obj), f"value outside the protocol limits: {obj.reason}")
    if isinstance(obj, list):
        return Invalid(None, "batches are not supported by protocol v1")
    if not isinstance(obj, dict):
        return Invalid(None, "a message must be a JSON object")
    raw_id = obj.get("id", _NO_ID)
    msg_id: Id = None if raw_id is _NO_ID else raw_id
    if raw_id is not _NO_ID and not (raw_id is None or isinstance(raw_id, (int, str))) or isinstance(raw_id, bool):
        return Invalid(None, "id must be a string, an integer or null")
    if obj.get("jsonrpc") != "2.0":
        return Invalid(msg_id, 'jsonrpc must be exactly "2.0"')
    if "method" in obj:
        method = obj["method"]
        if not isinstance(method, str):
            return Invalid(msg_id, "method must be a string")
        params = obj.get("params")
        if "params" in obj and not isinstance(params, (dict, list)):
            return Invalid(msg_id, "params must be an object or an array")
        if raw_id is _NO_ID:
            return Notification(method, params)
        if raw_id is None:
            return Invalid(None, "a request id must not be null (PROTOCOL.md §1)")
        return Request(msg_id, method, params)
    if raw_id is _NO_ID:
        return Invalid(None, "a response needs an id")
    has_result, has_error = "result" in obj, "error" in obj
    if has_result == has_error:
        return Invalid(msg_id, "a response needs exactly one of result and error")
    if has_result:
        return Response(msg_id, obj["result"])
    err = obj["error"]
    if not isinstance(err, dict) or not isinstance(err.get("code"), int) or not isinstance(err.get("message"), str):
        return Invalid(msg_id, "error must be an object with an integer code and a string message")
    return ErrorResponse(msg_id, RpcError.from_wire(err))


def encode(obj: dict[str, Any]) -> bytes:
    """Compact, UTF-8, guaranteed single line (json escapes newlines in strings).

    A string holding a lone surrogate (legal in JSON as an escape, but not
    encodable as UTF-8) makes the whole line fall back to ``\\uXXXX`` escapes.
    Raises ValueError for NaN/Infinity, TypeError for a non-JSON type.
    """
    text = _ENCODER.encode(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(obj).encode("ascii")


#: Built once: ``json.dumps`` with any argument builds a new encoder per call (a fifth of encoding a request).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ASCII_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def request(id: Id, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def response(id: Id, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "result": result}


def error_response(id: Id, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "error": error.to_wire()}
