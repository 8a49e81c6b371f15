"""HTTP calls shared by both wire APIs, with every failure translated to one ``TaskFailed``.

httpx is used directly (not the official ``ollama`` client): its ``client.stream()`` block
closes the connection the moment the task is cancelled, it keeps status codes and raw bodies
for our error messages, and the same client serves the OpenAI-compatible mode.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx

from gleitzeit_sdk.errors import TaskFailed
from provider_ollama.settings import Settings

BODY_QUOTE_CHARS = 200  # how much of an unexpected body an error message quotes


def make_client(settings: Settings) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.connect_timeout,
    )
    return httpx.AsyncClient(base_url=settings.endpoint, headers=headers, timeout=timeout, trust_env=True)


class Transport:
    """JSON over HTTP against one server; knows how that server reports errors."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings):
        self._client = client
        self.settings = settings

    async def get_json(self, path: str) -> Any:
        with self._translated():
            response = await self._client.get(path)
            return self._decoded(response, path, model=None)

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        with self._translated():
            response = await self._client.post(path, json=body)
            return self._decoded(response, path, model=body.get("model"))

    @asynccontextmanager
    async def post_lines(self, path: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[str]]:
        """Streamed POST; yields an iterator over the body's lines (blank ones included).

        Leaving the block early (an error, a cancellation) closes the connection. Transport
        errors raised while the caller iterates come back through the yield and are translated.
        """
        with self._translated():
            async with self._client.stream("POST", path, json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._status_error(response, path, body.get("model"))
                yield response.aiter_lines()

    def decode_line(self, line: str, path: str) -> Any:
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise self.malformed(path, line) from None

    def malformed(self, path: str, body: str) -> TaskFailed:
        return TaskFailed(
            f"malformed reply from {self.settings.server_label} at {self.settings.endpoint}{path}: "
            f"expected JSON, got {body[:BODY_QUOTE_CHARS]!r}",
            type="MalformedResponse",
            retryable=False,
        )

    def server_failed(self, message: str) -> TaskFailed:
        """An error the server reported inside a successful (streamed) reply."""
        return TaskFailed(
            f"{self.settings.server_label} at {self.settings.endpoint} failed: {message}",
            type="ServerError",
            retryable=True,
        )

    def model_missing(self, model: str) -> TaskFailed:
        if self.settings.api == "ollama":
            hint = f"run `ollama pull {model}`"
        else:
            hint = f"{self.settings.endpoint} does not serve it (llm/models lists what it serves)"
        return TaskFailed(f"model '{model}' not found; {hint}", type="ModelNotFound", retryable=False)

    def _decoded(self, response: httpx.Response, path: str, model: str | None) -> Any:
        if response.status_code != 200:
            raise self._status_error(response, path, model)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self.malformed(path, response.text) from None

    def route_missing(self, path: str, message: str) -> TaskFailed:
        """A 404 that is not about a model: the server answered, but has no such route,
        so it speaks another API than the one configured, or the endpoint has a wrong path."""
        where = f"{self.settings.endpoint}{path}"
        if self.settings.api == "ollama":
            hint = ("the server answers but is not Ollama's native API; for an OpenAI-compatible server "
                    "(llama.cpp, vLLM, LM Studio) set `api: openai` in the ollama provider's config "
                    "(gleitzeit config set providers.ollama.api openai), else check the endpoint")
        else:
            hint = ("the server answers but does not serve the OpenAI-compatible API there; set the endpoint "
                    "to the server's base URL (the /v1 is added), or `api: ollama` for Ollama's native API")
        return TaskFailed(f"{where} does not exist (HTTP 404: {message}): {hint}", type="EndpointNotFound",
                          retryable=False, details={"status": 404})

    def _status_error(self, response: httpx.Response, path: str, model: str | None) -> TaskFailed:
        status = response.status_code
        message = error_message(response.text)
        if status == 404 and model and names_a_model(message, path, model):
            return self.model_missing(model)
        if status == 404:
            return self.route_missing(path, message)
        where = f"{self.settings.server_label} at {self.settings.endpoint}{path}"
        retryable = status >= 500 or status in (408, 429)
        return TaskFailed(
            f"{where} answered HTTP {status}: {message}",
            type="ServerError" if retryable else "RequestRejected",
            retryable=retryable,
            details={"status": status},
        )

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """httpx's exceptions become one readable TaskFailed each; nothing else is caught."""
        label, url = self.settings.server_label, self.settings.endpoint
        try:
            yield
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            hint = "is `ollama serve` running?" if self.settings.api == "ollama" else "is the server running?"
            raise TaskFailed(f"cannot reach {label} at {url} ({hint})", type="ServerUnreachable", retryable=True) from None
        except httpx.TimeoutException:
            raise TaskFailed(
                f"{label} at {url} sent nothing for {self.settings.read_timeout:g} s",
                type="ServerTimeout",
                retryable=True,
            ) from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise TaskFailed(
                f"connection to {label} at {url} broke: {exc or type(exc).__name__}",
                type="ConnectionLost",
                retryable=True,
            ) from None


def names_a_model(message: str, path: str, model: str) -> bool:
    """Whether a 404's text is about the model (Ollama: "model 'x' not found"; OpenAI-style:
    "The model `x` does not exist") rather than the route ("404 page not found",
    "File Not Found", "POST /api/chat not found")."""
    text = message.lower().replace(path.lower(), "")
    return model.lower() in text or re.search(r"\bmodel\b", text) is not None


def error_message(body: str) -> str:
    """The server's own error text: Ollama sends ``{"error": str}``, OpenAI-style servers
    ``{"error": {"message": str}}``; anything else is quoted."""
    try:
        obj = json.loads(body)
    except json.JSONDecodeError:
        return repr(body[:BODY_QUOTE_CHARS]) if body else "(empty body)"
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        err = err.get("message")
    if isinstance(err, str) and err:
        return err
    return repr(body[:BODY_QUOTE_CHARS])
