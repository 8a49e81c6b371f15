"""The OpenAI-compatible API (``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
``/v1/models``) served by llama.cpp, vLLM, LM Studio and Ollama itself.

These servers report no load/eval timings, so ``durations`` are measured here: ``prompt_eval``
is the time to the first token (streaming only), ``eval`` the rest, ``total`` the whole call.
"""

from __future__ import annotations

import time
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


_SSE_DATA = "data:"
_SSE_DONE = "[DONE]"


class OpenAiApi:
    def __init__(self, transport: Transport):
        self._t = transport

    async def chat(self, call: ChatCall, on_delta: DeltaSink | None) -> Completion:
        body = _common(call.model, call.sampling, call.format)
        body["messages"] = [_message(m) for m in call.messages]
        return await self._complete("/v1/chat/completions", body, on_delta, _chat_piece)

    async def generate(self, call: GenerateCall, on_delta: DeltaSink | None) -> Completion:
        if call.images:
            raise TaskFailed(
                "llm/generate with images needs api: ollama; use llm/vision or llm/chat in OpenAI mode",
                type="Unsupported",
                retryable=False,
            )
        body = _common(call.model, call.sampling, call.format)
        body["prompt"] = f"{call.system}\n\n{call.prompt}" if call.system else call.prompt
        return await self._complete("/v1/completions", body, on_delta, _text_piece)

    async def embed(self, model: str, inputs: list[str]) -> Embeddings:
        started = time.perf_counter()
        obj = await self._t.post_json("/v1/embeddings", {"model": model, "input": inputs})
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, list) or not all(isinstance(d, dict) and "embedding" in d for d in data):
            raise self._t.malformed("/v1/embeddings", repr(obj))
        data = sorted(data, key=lambda d: d.get("index", 0))
        return Embeddings(
            model=obj.get("model") or model,
            embeddings=[_pooled(d["embedding"]) for d in data],
            prompt_tokens=(obj.get("usage") or {}).get("prompt_tokens"),
            durations_ms={"total": _ms_since(started)},
        )

    async def models(self) -> list[ModelEntry]:
        obj = await self._t.get_json("/v1/models")
        if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
            raise self._t.malformed("/v1/models", repr(obj))
        return [
            ModelEntry(name=str(m.get("id")), details={k: v for k, v in m.items() if k not in ("id", "object")})
            for m in obj["data"]
            if isinstance(m, dict) and m.get("id")
        ]

    async def version(self) -> str | None:
        return None  # the OpenAI API has no version endpoint

    async def capabilities(self, model: str) -> list[str] | None:
        return None  # nor a way to ask what a model can do

    async def _complete(self, path: str, body: dict[str, Any], on_delta: DeltaSink | None, piece: Piece) -> Completion:
        started = time.perf_counter()
        if on_delta is None:
            obj = await self._t.post_json(path, body)
            choice = _first_choice(obj)
            if choice is None or piece(choice) is None:
                raise self._t.malformed(path, repr(obj))
            completion = _completion(obj, choice, body["model"], piece(choice))
            completion.durations_ms = {"load": None, "prompt_eval": None, "eval": None, "total": _ms_since(started)}
            return completion
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        parts: list[str] = []
        thinking: list[str] = []
        first_token: float | None = None
        last: dict[str, Any] = {}
        finish: str | None = None
        usage: dict[str, Any] = {}
        chunks = 0
        async with self._t.post_lines(path, body) as lines:
            async for line in lines:
                if not line.startswith(_SSE_DATA):
                    continue  # SSE comments, event names, keep-alives
                data = line[len(_SSE_DATA):].strip()
                if data == _SSE_DONE:
                    break
                obj = self._t.decode_line(data, path)
                if not isinstance(obj, dict):
                    raise self._t.malformed(path, line)
                if "error" in obj:
                    err = obj["error"]
                    raise self._t.server_failed(str(err.get("message") if isinstance(err, dict) else err))
                last = obj
                usage = obj.get("usage") or usage
                choice = _first_choice(obj)
                if choice is None:
                    continue  # the usage-only chunk
                got = piece(choice)
                if got is None:
                    raise self._t.malformed(path, line)
                finish = choice.get("finish_reason") or finish
                if got[1]:
                    thinking.append(got[1])
                if got[0]:
                    chunks += 1
                    first_token = first_token or time.perf_counter()
                    parts.append(got[0])
                    await on_delta(got[0])
            else:
                raise TaskFailed(
                    f"{self._t.settings.server_label} at {self._t.settings.endpoint} ended the stream without [DONE]",
                    type="ConnectionLost",
                    retryable=True,
                )
        ended = time.perf_counter()
        return Completion(
            content="".join(parts),
            model=last.get("model") or body["model"],
            done_reason=finish,
            prompt_tokens=usage.get("prompt_tokens"),
            # servers that ignore include_usage send one token per chunk (llama.cpp does)
            completion_tokens=usage.get("completion_tokens", chunks if not usage else None),
            durations_ms={
                "load": None,
                "prompt_eval": round((first_token - started) * 1000, 3) if first_token else None,
                "eval": round((ended - first_token) * 1000, 3) if first_token else None,
                "total": round((ended - started) * 1000, 3),
            },
            thinking="".join(thinking) or None,
        )


def _common(model: str, sampling: Sampling, format: Any) -> dict[str, Any]:
    named = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": sampling.seed,
        "stop": sampling.stop,
        "max_tokens": sampling.max_tokens,
    }
    body: dict[str, Any] = {"model": model, **sampling.extra, **{k: v for k, v in named.items() if v is not None}}
    if format == "json":
        body["response_format"] = {"type": "json_object"}
    elif isinstance(format, dict):
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "result", "schema": format}}
    return body


def _message(msg: dict[str, Any]) -> dict[str, Any]:
    """Ollama-style ``images`` on a message become OpenAI content parts."""
    images = msg.get("images")
    if not images:
        return {k: v for k, v in msg.items() if k != "images"}
    parts: list[dict[str, Any]] = [{"type": "text", "text": msg.get("content") or ""}]
    parts += [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64}"}} for b64 in images]
    return {**{k: v for k, v in msg.items() if k not in ("images", "content")}, "content": parts}


def _first_choice(obj: Any) -> dict[str, Any] | None:
    choices = obj.get("choices") if isinstance(obj, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _chat_piece(choice: dict[str, Any]) -> tuple[str, str] | None:
    msg = choice.get("delta", choice.get("message"))
    if not isinstance(msg, dict):
        return None
    return str(msg.get("content") or ""), str(msg.get("reasoning_content") or msg.get("reasoning") or "")


def _text_piece(choice: dict[str, Any]) -> tuple[str, str] | None:
    text = choice.get("text")
    return None if text is None and "finish_reason" not in choice else (str(text or ""), "")


def _completion(obj: dict[str, Any], choice: dict[str, Any], model: str, got: tuple[str, str]) -> Completion:
    usage = obj.get("usage") or {}
    msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    return Completion(
        content=got[0],
        model=obj.get("model") or model,
        role=msg.get("role") or "assistant",
        done_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        thinking=got[1] or None,
    )


def _pooled(vector: list[Any]) -> list[float]:
    """llama-cpp-python returns one vector per token for models without pooling (chat
    models); their mean is the usual sentence embedding (llama.cpp's ``--pooling mean``)."""
    if not vector or not isinstance(vector[0], list):
        return vector
    return [sum(column) / len(vector) for column in zip(*vector)]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
