"""What the provider asks of an LLM server and what it gets back, independent of the wire API.

``ollama_api`` and ``openai_api`` each turn these into HTTP calls; ``provider`` turns
them into task results. Keeping both APIs behind one shape keeps the result shape equal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Piece = Callable[[dict[str, Any]], "tuple[str, str] | None"]
"""Text and thinking in one reply object (or chunk); None when the object has neither field."""

DeltaSink = Callable[[str], Awaitable[None]]
"""Receives each text delta as it arrives; given only when the host wants streaming."""


@dataclass(frozen=True)
class Sampling:
    """Generation options common to both APIs; ``extra`` is the user's raw ``options``."""

    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    max_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatCall:
    model: str
    messages: list[dict[str, Any]]  # role, content, optional images (base64 strings)
    sampling: Sampling = field(default_factory=Sampling)
    format: str | dict[str, Any] | None = None  # "json" or a JSON Schema
    keep_alive: str | int | None = None
    think: bool | None = None


@dataclass(frozen=True)
class GenerateCall:
    model: str
    prompt: str
    system: str | None = None
    images: list[str] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)
    format: str | dict[str, Any] | None = None
    keep_alive: str | int | None = None
    think: bool | None = None


@dataclass
class Completion:
    content: str
    model: str
    role: str = "assistant"
    done_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    durations_ms: dict[str, float | None] = field(default_factory=dict)  # load, prompt_eval, eval, total
    thinking: str | None = None


@dataclass
class Embeddings:
    model: str
    embeddings: list[list[float]]
    prompt_tokens: int | None = None
    durations_ms: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ModelEntry:
    name: str
    size: int | None = None
    modified_at: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class LlmApi(Protocol):
    """One LLM server reached over HTTP. Errors are raised as ``TaskFailed``."""

    async def chat(self, call: ChatCall, on_delta: DeltaSink | None) -> Completion: ...

    async def generate(self, call: GenerateCall, on_delta: DeltaSink | None) -> Completion: ...

    async def embed(self, model: str, inputs: list[str]) -> Embeddings: ...

    async def models(self) -> list[ModelEntry]: ...

    async def version(self) -> str | None: ...

    async def capabilities(self, model: str) -> list[str] | None:
        """What the model can do ("vision", "thinking", ...); None when the server does not say."""
        ...
