"""Provider: the author-facing registry of task methods, and what it advertises in ``initialize``."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar

from anyio.abc import AnyByteReceiveStream, AnyByteSendStream

from gleitzeit_sdk import codes, stdio, typeschema
from gleitzeit_sdk.description import ConfigureLimits, HealthCheck, Limits, ProviderDescription
from gleitzeit_sdk.method import Handler, MethodSpec
from gleitzeit_sdk.server import Connection

METHOD_NAME = re.compile(r"^[a-z][a-z0-9_-]*/[A-Za-z0-9_./-]+$")

H = TypeVar("H", bound=Handler)
Lifespan = Callable[[dict[str, Any]], AsyncIterator[Any]]


class Provider:
    """A provider process: declare methods with ``@provider.method(...)``, then ``provider.run()``."""

    def __init__(
        self,
        name: str,
        version: str,
        *,
        max_in_flight: int = 4,
        protocols: list[str] | None = None,
        max_message_bytes: int = codes.DEFAULT_MAX_MESSAGE_BYTES,
        max_assembled_bytes: int = codes.DEFAULT_MAX_ASSEMBLED_BYTES,
    ):
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.name = name
        self.version = version
        self.max_in_flight = max_in_flight
        self.max_message_bytes = max_message_bytes
        self.max_assembled_bytes = max_assembled_bytes  # largest message accepted in pieces
        self._protocols = protocols
        self._methods: dict[str, MethodSpec] = {}
        self.lifespan_fn: Callable[[dict[str, Any]], Any] | None = None
        self.health_check_fn: HealthCheck | None = None
        self.configure_limits_fn: ConfigureLimits | None = None

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        return MappingProxyType(self._methods)

    @property
    def protocols(self) -> list[str]:
        """Given explicitly, or ``<prefix>/v1`` for each method-name prefix."""
        if self._protocols is not None:
            return list(self._protocols)
        return sorted({f"{name.split('/', 1)[0]}/v1" for name in self._methods})

    def method(
        self,
        name: str,
        *,
        params_schema: dict[str, Any] | None = None,
        result_schema: dict[str, Any] | None = None,
        description: str | None = None,
        code_params: dict[str, str] | None = None,
        idempotent: bool = False,
        default_timeout: float | None = None,
        timeout_param: str | None = None,
        streaming: bool = False,
        file_params: tuple[str, ...] = (),
        cacheable: bool | str = True,
    ) -> Callable[[H], H]:
        """Register an ``async def handler(ctx, **params)``; schemas default to its type hints."""
        if not METHOD_NAME.match(name) or name.startswith("$/"):
            raise ValueError(f"method name {name!r} must look like 'protocol/action' (pattern {METHOD_NAME.pattern})")
        if name in self._methods:
            raise ValueError(f"method {name!r} is already registered")

        def register(handler: H) -> H:
            if not inspect.iscoroutinefunction(handler):
                raise TypeError(f"handler for {name!r} must be an async function")
            if not inspect.signature(handler).parameters:
                raise TypeError(f"handler for {name!r} must take the RequestContext as its first parameter")
            doc = inspect.getdoc(handler) or ""
            self._methods[name] = MethodSpec(
                name=name,
                handler=handler,
                params_schema=params_schema if params_schema is not None else typeschema.params_schema(handler),
                result_schema=result_schema if result_schema is not None else typeschema.result_schema(handler),
                description=description if description is not None else doc.split("\n\n", 1)[0],
                code_params=dict(code_params or {}),
                idempotent=idempotent,
                default_timeout=default_timeout,
                timeout_param=timeout_param,
                streaming=streaming,
                file_params=tuple(file_params),
                cacheable=cacheable,
            )
            return handler

        return register

    def lifespan(self, fn: Lifespan) -> Lifespan:
        """Register ``async def fn(config): ...; yield state; ...`` run around serving.

        It starts when ``initialize`` arrives (it gets initialize's ``config``),
        its yielded value is ``ctx.state`` in handlers, and it is closed on exit.
        """
        if self.lifespan_fn is not None:
            raise ValueError("a lifespan is already registered")
        self.lifespan_fn = asynccontextmanager(fn)
        return fn

    def health_check(self, fn: HealthCheck) -> HealthCheck:
        """Register ``async def fn() -> dict``: extra fields for the ``health`` answer."""
        self.health_check_fn = fn
        return fn

    def configure_limits(self, fn: ConfigureLimits) -> ConfigureLimits:
        """Register ``def fn(config, limits) -> Limits``: this connection's limits from ``initialize``'s config.

        Called in ``initialize`` before the lifespan starts; what it returns is both
        advertised and enforced (e.g. ``dataclasses.replace(limits, max_in_flight=n)``).
        If it raises, ``initialize`` fails with its message.
        """
        if self.configure_limits_fn is not None:
            raise ValueError("a configure_limits hook is already registered")
        self.configure_limits_fn = fn
        return fn

    def describe(self) -> ProviderDescription:
        """A frozen snapshot of what this provider serves (what a connection reads)."""
        return ProviderDescription(
            name=self.name,
            version=self.version,
            protocols=tuple(self.protocols),
            methods=MappingProxyType(dict(self._methods)),
            limits=Limits(self.max_in_flight, self.max_message_bytes, self.max_assembled_bytes),
            lifespan=self.lifespan_fn,
            health_check=self.health_check_fn,
            configure_limits=self.configure_limits_fn,
        )

    def initialize_result(self) -> dict[str, Any]:
        """The ``initialize`` result with the static limits (no config applied)."""
        return self.describe().initialize_result()

    async def serve(self, receive_stream: AnyByteReceiveStream, send_stream: AnyByteSendStream) -> None:
        """Serve one host over a byte stream pair until its EOF."""
        await Connection(self.describe(), receive_stream, send_stream).serve()

    def run(self) -> NoReturn:
        """Serve stdin/stdout (fd 1 re-pointed at stderr meanwhile); exit 0 on stdin EOF."""
        stdio.run(self.serve)
