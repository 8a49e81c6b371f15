"""Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/embed``, ``/api/tags``,
``/api/version``), field names as in Ollama's docs/api.md. Durations arrive in nanoseconds."""

from __future__ import annotations

from typing import Any

from gleitzeit_sdk.errors import TaskFailed
from provider_ollama.api_types import (
    ChatCall,
    Completion,
    DeltaSink,
    Embeddings,
    GenerateCall,
    ModelEntry,
    Piece,
    Sampling,
)
from provider_ollama.transport import Transport


_DURATIONS = {"load": "load_duration", "prompt_eval": "prompt_eval_duration", "eval": "eval_duration", "total": "total_duration"}


class OllamaApi:
    def __init__(self, transport: Transport):
        self._t = transport

    async def chat(self, call: ChatCall, on_delta: DeltaSink | None) -> Completion:
        body = _common(call.model, call.sampling, call.format, call.keep_alive, call.think)
        body["messages"] = call.messages
        return await self._complete("/api/chat", body, on_delta, _chat_piece)

    async def generate(self, call: GenerateCall, on_delta: DeltaSink | None) -> Completion:
        body = _common(call.model, call.sampling, call.format, call.keep_alive, call.think)
        body["prompt"] = call.prompt
        if call.system is not None:
            body["system"] = call.system
        if call.images:
            body["images"] = call.images
        return await self._complete("/api/generate", body, on_delta, _generate_piece)

    async def embed(self, model: str, inputs: list[str]) -> Embeddings:
        obj = await self._t.post_json("/api/embed", {"model": model, "input": inputs})
        vectors = obj.get("embeddings") if isinstance(obj, dict) else None
        if not isinstance(vectors, list):
            raise self._t.malformed("/api/embed", repr(obj))
        return Embeddings(
            model=obj.get("model", model),
            embeddings=vectors,
            prompt_tokens=obj.get("prompt_eval_count"),
            durations_ms=_durations(obj),
        )

    async def models(self) -> list[ModelEntry]:
        obj = await self._t.get_json("/api/tags")
        if not isinstance(obj, dict) or not isinstance(obj.get("models"), list):
            raise self._t.malformed("/api/tags", repr(obj))
        return [
            ModelEntry(
                name=m.get("name") or m.get("model", ""),
                size=m.get("size"),
                modified_at=m.get("modified_at"),
                details=m.get("details") or {},
            )
            for m in obj["models"]
            if isinstance(m, dict)
        ]

    async def version(self) -> str | None:
        obj = await self._t.get_json("/api/version")
        return obj.get("version") if isinstance(obj, dict) else None

    async def capabilities(self, model: str) -> list[str] | None:
        obj = await self._t.post_json("/api/show", {"model": model})
        caps = obj.get("capabilities") if isinstance(obj, dict) else None  # absent before Ollama 0.6.4
        return [str(c) for c in caps] if isinstance(caps, list) else None

    async def _complete(self, path: str, body: dict[str, Any], on_delta: DeltaSink | None, piece: Piece) -> Completion:
        """Non-streaming when nobody watches; else NDJSON chunks, each delta forwarded."""
        if on_delta is None:
            body["stream"] = False
            obj = await self._t.post_json(path, body)
            if not isinstance(obj, dict) or piece(obj) is None:
                raise self._t.malformed(path, repr(obj))
            content, thinking = piece(obj)
            return _completion(obj, body["model"], content, thinking)
        body["stream"] = True
        content: list[str] = []
        thinking: list[str] = []
        async with self._t.post_lines(path, body) as lines:
            async for line in lines:
                if not line.strip():
                    continue
                obj = self._t.decode_line(line, path)
                if not isinstance(obj, dict):
                    raise self._t.malformed(path, line)
                if "error" in obj:
                    raise self._t.server_failed(str(obj["error"]))
                got = piece(obj)
                if got is None:
                    raise self._t.malformed(path, line)
                if got[1]:
                    thinking.append(got[1])
                if got[0]:
                    content.append(got[0])
                    await on_delta(got[0])
                if obj.get("done"):
                    return _completion(obj, body["model"], "".join(content), "".join(thinking))
        raise TaskFailed(
            f"{self._t.settings.server_label} at {self._t.settings.endpoint} ended the stream before the reply was done",
            type="ConnectionLost",
            retryable=True,
        )


def _common(model: str, sampling: Sampling, format: Any, keep_alive: Any, think: bool | None) -> dict[str, Any]:
    named = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": sampling.seed,
        "stop": sampling.stop,
        "num_predict": sampling.max_tokens,
    }
    body: dict[str, Any] = {"model": model}
    options = {**sampling.extra, **{k: v for k, v in named.items() if v is not None}}
    if options:
        body["options"] = options
    if format is not None:
        body["format"] = format
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    if think is not None:
        body["think"] = think
    return body


def _chat_piece(obj: dict[str, Any]) -> tuple[str, str] | None:
    msg = obj.get("message")
    if msg is None and obj.get("done"):
        return "", ""  # some servers send no message in the final chunk
    if not isinstance(msg, dict):
        return None
    return str(msg.get("content") or ""), str(msg.get("thinking") or "")


def _generate_piece(obj: dict[str, Any]) -> tuple[str, str] | None:
    if "response" not in obj and not obj.get("done"):
        return None
    return str(obj.get("response") or ""), str(obj.get("thinking") or "")


def _completion(obj: dict[str, Any], model: str, content: str, thinking: str) -> Completion:
    role = obj.get("message", {}).get("role") if isinstance(obj.get("message"), dict) else None
    return Completion(
        content=content,
        model=obj.get("model") or model,
        role=role or "assistant",
        done_reason=obj.get("done_reason"),
        prompt_tokens=obj.get("prompt_eval_count"),
        completion_tokens=obj.get("eval_count"),
        durations_ms=_durations(obj),
        thinking=thinking or None,
    )


def _durations(obj: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, field in _DURATIONS.items():
        ns = obj.get(field)
        out[key] = round(ns / 1e6, 3) if isinstance(ns, (int, float)) else None
    return out
