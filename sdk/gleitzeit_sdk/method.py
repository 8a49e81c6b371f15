"""One registered task method: its descriptor, its params validator, and the call wrapper.

``invoke`` is what the connection calls for each request. It is the one place
where whatever a handler does (returns, raises TaskFailed/RpcError, has a bug)
becomes a wire result or an ``RpcError``, so no bare exception reaches the
connection (a -32603 carries the exception's type and message, not a traceback).

Params are checked against the method's schema here, on every request: this is
where bytes from any host (not only Gleitzeit's) reach the author's code, which
relies on the types its schema promises.
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

    @cached_property
    def _keywords(self) -> tuple[frozenset[str], frozenset[str]] | None:
        """(accepted, required) keyword names after the context, when the params can be checked
        as a set; None (use ``Signature.bind``) for ``**kwargs`` or positional-only parameters."""
        accepted, required = set(), set()
        for param in list(self._signature.parameters.values())[1:]:
            if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                return None
            accepted.add(param.name)
            if param.default is param.empty:
                required.add(param.name)
        return frozenset(accepted), frozenset(required)

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

    def _check_binding(self, ctx: Any, params: dict[str, Any]) -> None:
        """Raise -32602 if the handler cannot take these params (the schema may allow more)."""
        keywords = self._keywords
        if keywords is None:
            try:
                self._signature.bind(ctx, **params)
            except TypeError as exc:
                raise RpcError(codes.INVALID_PARAMS, f"invalid params for {self.name}: {exc}") from None
            return
        accepted, required = keywords
        if missing := required - params.keys():
            raise RpcError(codes.INVALID_PARAMS, f"invalid params for {self.name}: missing a required argument: "
                                                 f"{min(missing)!r}")
        if unknown := params.keys() - accepted:
            raise RpcError(codes.INVALID_PARAMS, f"invalid params for {self.name}: got an unexpected keyword "
                                                 f"argument {min(unknown)!r}")

    async def invoke(self, ctx: Any, params: dict[str, Any]) -> Any:
        """The handler's result for one request; raises ``RpcError`` for every way it can fail."""
        try:
            self.check_params(params)
            self._check_binding(ctx, params)
            return await self.handler(ctx, **params)
        except RpcError:
            raise
        except Exception as exc:
            log.exception("handler of %s raised", self.name)
            raise RpcError(
                codes.INTERNAL_ERROR,
                f"{type(exc).__name__}: {exc}",
                {"type": type(exc).__name__, "message": str(exc), "retryable": True},
            ) from None
