"""Provider settings: the host's ``config`` object plus environment overrides, read once.

Precedence for the endpoint: environment (``GLEITZEIT_OLLAMA_URL`` in Ollama mode,
``GLEITZEIT_OPENAI_URL`` in OpenAI mode) > config ``endpoint`` > ``http://localhost:11434``
(Ollama serves both its own API and the OpenAI-compatible one there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_ENDPOINT = "http://localhost:11434"
DEFAULT_MODELS = {"chat": "llama3.2", "vision": "llava", "embedding": "nomic-embed-text"}

Api = Literal["ollama", "openai"]


class SettingsError(ValueError):
    """The provider config cannot be used; the message names the offending key."""


@dataclass(frozen=True)
class Settings:
    endpoint: str = DEFAULT_ENDPOINT
    api: Api = "ollama"
    api_key: str | None = None
    default_models: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    max_in_flight: int = 1
    connect_timeout: float = 5.0  # a local server that does not accept within 5 s is not running
    read_timeout: float = 600.0  # longest silence between two chunks (model load can take minutes)
    hidden: tuple[str, ...] = ()  # Gleitzeit's own state (the engine's private paths): no task file is read there

    @classmethod
    def load(cls, config: Mapping[str, Any] | None, env: Mapping[str, str]) -> "Settings":
        config = dict(config or {})
        api = config.get("api", "ollama")
        if api not in ("ollama", "openai"):
            raise SettingsError(f"config api: expected 'ollama' or 'openai', got {api!r}")
        env_url = env.get("GLEITZEIT_OPENAI_URL" if api == "openai" else "GLEITZEIT_OLLAMA_URL")
        endpoint = env_url or config.get("endpoint") or DEFAULT_ENDPOINT
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise SettingsError(f"config endpoint: expected an http(s) URL, got {endpoint!r}")
        api_key = config.get("api_key") or (env.get("GLEITZEIT_OPENAI_API_KEY") if api == "openai" else None)
        models = config.get("default_models") or {}
        if not isinstance(models, dict):
            raise SettingsError(f"config default_models: expected a mapping, got {models!r}")
        max_in_flight = config.get("max_in_flight", 1)
        if not isinstance(max_in_flight, int) or isinstance(max_in_flight, bool) or max_in_flight < 1:
            raise SettingsError(f"config max_in_flight: expected a positive integer, got {max_in_flight!r}")
        timeouts = {k: float(config[k]) for k in ("connect_timeout", "read_timeout") if k in config}
        hidden = config.get("hidden") or []
        if not isinstance(hidden, list) or not all(isinstance(p, str) for p in hidden):
            raise SettingsError(f"config hidden: expected a list of paths, got {hidden!r}")
        return cls(
            endpoint=_normalise(endpoint, api),
            api=api,
            api_key=api_key or None,
            default_models={**DEFAULT_MODELS, **{str(k): str(v) for k, v in models.items()}},
            max_in_flight=max_in_flight,
            hidden=tuple(hidden),
            **timeouts,
        )

    @property
    def server_label(self) -> str:
        """How error messages name the server."""
        return "Ollama" if self.api == "ollama" else "the OpenAI-compatible server"


def _normalise(endpoint: str, api: Api) -> str:
    """Base URL without trailing slash; a trailing ``/v1`` is dropped in OpenAI mode
    because the client adds it (users copy either form from server docs)."""
    endpoint = endpoint.rstrip("/")
    if api == "openai" and endpoint.endswith("/v1"):
        endpoint = endpoint[: -len("/v1")]
    return endpoint
