"""One registered task method: its descriptor, its params validator, and the call wrapper.

``invoke`` is what jsonrpcserver calls. It is the one place where whatever a
handler does (returns, raises TaskFailed/RpcError, has a bug) becomes a wire
result or error, so jsonrpcserver never sees a bare exception (it would leak
``str(exc)`` as -32603 data and log a traceback of its own).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from gleitzeit_sdk import codes
from gleitzeit_sdk.errors import RpcError
from gleitzeit_sdk.rpcserver import JsonRpcError, Result, Success, to_wire_data

log = logging.getLogger("gleitzeit_sdk")

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    handler: Handler
    params_schema: dict[str, Any]
    result_schema: dict[str, Any]
    description: str = ""
    code_params: dict[str, str] = field(default_factory=dict)
    idempotent: bool = False
    default_timeout: float | None = None
    timeout_param: str | None = None
    streaming: bool = False
    file_params: tuple[str, ...] = ()  # params holding paths of files the method reads
    cacheable: bool | str = True  # False: never cache; "task": only when the task itself asks

    def __post_init__(self) -> None:
        for label, schema in (("params_schema", self.params_schema), ("result_schema", self.result_schema)):
            try:
                Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"{self.name}: {label} is not a valid JSON Schema: {exc.message}") from None
        unknown = set(self.code_params) - set(self.params_schema.get("properties", {}))
        if unknown and self.params_schema.get("properties") is not None:
            raise ValueError(f"{self.name}: code_params names unknown parameters {sorted(unknown)}")
        unknown = set(self.file_params) - set(self.params_schema.get("properties", {}))
        if unknown and self.params_schema.get("properties") is not None:
            raise ValueError(f"{self.name}: file_params names unknown parameters {sorted(unknown)}")
        if self.cacheable not in (True, False, "task"):
            raise ValueError(f"{self.name}: cacheable must be true, false or 'task', not {self.cacheable!r}")
        if self.timeout_param is not None and self.timeout_param not in self.params_schema.get("properties", {}):
            raise ValueError(f"{self.name}: timeout_param names an unknown parameter {self.timeout_param!r}")

    @cached_property
    def _validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.params_schema)

    @cached_property
    def _signature(self) -> inspect.Signature:
        return inspect.signature(self.handler)

    def descriptor(self) -> dict[str, Any]:
        """The method's entry in the ``initialize`` result."""
        return {
            "name": self.name,
            "description": self.description,
            "paramsSchema": self.params_schema,
            "resultSchema": self.result_schema,
            "codeParams": dict(self.code_params),
            "idempotent": self.idempotent,
            "defaultTimeoutSec": self.default_timeout,
            "timeoutParam": self.timeout_param,
            "streaming": self.streaming,
            "fileParams": list(self.file_params),
            "cacheable": self.cacheable,
        }

    def check_params(self, params: dict[str, Any]) -> None:
        """Raise -32602 naming the offending parameter if params break the schema."""
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(params))
        if error is None:
            return
        where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        text = f"parameter {where.lstrip('.')!r}: {error.message}" if where else error.message
        raise RpcError(codes.INVALID_PARAMS, f"invalid params for {self.name}: {text}")

    async def invoke(self, ctx: Any, /, **params: Any) -> Result:
        try:
            self.check_params(params)
            try:
                bound = self._signature.bind(ctx, **params)
            except TypeError as exc:
                raise RpcError(codes.INVALID_PARAMS, f"invalid params for {self.name}: {exc}") from None
            return Success(await self.handler(*bound.args, **bound.kwargs))
        except RpcError as exc:
            raise JsonRpcError(exc.code, exc.message, to_wire_data(exc.data)) from None
        except Exception as exc:
            log.exception("handler of %s raised", self.name)
            raise JsonRpcError(
                codes.INTERNAL_ERROR,
                f"{type(exc).__name__}: {exc}",
                {"type": type(exc).__name__, "message": str(exc), "retryable": True},
            ) from None
