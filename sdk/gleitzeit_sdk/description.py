"""What a connection serves: a frozen description of one provider, taken when serving starts.

The registry (``Provider``) builds it; the session (``server.Connection``) only
reads it. So the session never imports the registry, and nothing a provider
changes on its ``Provider`` after ``serve()`` started reaches a live connection.
The limits a connection enforces and advertises are its own value: the static
ones here, or what the provider's ``configure_limits`` hook derives from
``initialize``'s config (``effective_limits``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from gleitzeit_sdk import codes
from gleitzeit_sdk.method import MethodSpec

LifespanFactory = Callable[[dict[str, Any]], AbstractAsyncContextManager[Any]]
HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Limits:
    """The limits a provider advertises in ``initialize`` and enforces on its connection."""

    max_in_flight: int = 4
    max_message_bytes: int = codes.DEFAULT_MAX_MESSAGE_BYTES
    max_assembled_bytes: int = codes.DEFAULT_MAX_ASSEMBLED_BYTES  # largest message accepted in pieces

    def __post_init__(self) -> None:
        if not isinstance(self.max_in_flight, int) or isinstance(self.max_in_flight, bool) or self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be an integer >= 1, not {self.max_in_flight!r}")
        if self.max_message_bytes < 1024 or self.max_assembled_bytes < 0:
            raise ValueError("max_message_bytes must be >= 1024 and max_assembled_bytes >= 0")


#: ``fn(config, limits) -> Limits``: the limits for a connection whose ``initialize`` carried ``config``.
ConfigureLimits = Callable[[dict[str, Any], Limits], Limits]


@dataclass(frozen=True)
class ProviderDescription:
    name: str
    version: str
    protocols: tuple[str, ...]
    methods: Mapping[str, MethodSpec]
    limits: Limits
    lifespan: LifespanFactory | None = None
    health_check: HealthCheck | None = None
    configure_limits: ConfigureLimits | None = None

    def effective_limits(self, config: dict[str, Any]) -> Limits:
        """The static limits, or the hook's answer for this config (it may raise: initialize then fails)."""
        if self.configure_limits is None:
            return self.limits
        limits = self.configure_limits(config, self.limits)
        if not isinstance(limits, Limits):
            raise TypeError(f"configure_limits must return Limits, not {type(limits).__name__}")
        return limits

    def initialize_result(self, limits: Limits | None = None) -> dict[str, Any]:
        limits = limits or self.limits
        return {
            "protocolVersion": codes.PROTOCOL_VERSION,
            "provider": {"name": self.name, "version": self.version},
            "protocols": list(self.protocols),
            "capabilities": {
                "cancellation": True,
                "progress": True,
                "output": True,
                "logging": True,
                "concurrency": {"maxInFlight": limits.max_in_flight},
            },
            "limits": {"maxMessageBytes": limits.max_message_bytes, "maxAssembledBytes": limits.max_assembled_bytes},
            "methods": [spec.descriptor() for spec in self.methods.values()],
        }

