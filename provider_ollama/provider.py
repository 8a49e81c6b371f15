"""The ``llm/v1`` provider: chat, generate, vision, embed and models over an Ollama (or
OpenAI-compatible) server, on the Gleitzeit provider SDK.

The HTTP client and the chosen API live in a ``_Server`` made by the lifespan from the
host's config, so one process talks to exactly one server for its whole life.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio

from gleitzeit_sdk import Limits, Provider, RequestContext, TaskFailed
from provider_ollama import __version__, schemas
from provider_ollama.api_types import ChatCall, Completion, DeltaSink, GenerateCall, LlmApi, Sampling
from gleitzeit_sdk.confined import Roots
from provider_ollama.inputs import (
    append_to_last_user,
    attach_images,
    chat_messages,
    encode_images,
    file_block,
    parse_structured,
)
from provider_ollama.ollama_api import OllamaApi
from provider_ollama.openai_api import OpenAiApi
from provider_ollama.settings import Settings
from provider_ollama.transport import Transport, make_client


HEALTH_TIMEOUT = 3.0  # health must answer promptly even when the server hangs


@dataclass
class _Server:
    settings: Settings
    api: LlmApi


class _HealthView:
    """The SDK calls health checks without a context, so the lifespan leaves the server here too."""

    server: _Server | None = None


def build_provider(env: Mapping[str, str] | None = None) -> Provider:
    env = os.environ if env is None else env
    view = _HealthView()
    provider = Provider(name="ollama", version=__version__, max_in_flight=1)

    @provider.configure_limits
    def limits(config: dict[str, Any], defaults: Limits) -> Limits:
        """The advertised and enforced in-flight limit follows the config (one generation per GPU);
        a bad config fails the handshake with its message."""
        return replace(defaults, max_in_flight=Settings.load(config, env).max_in_flight)

    @provider.lifespan
    async def lifespan(config: dict[str, Any]) -> AsyncIterator[_Server]:
        """Runs inside ``initialize``, after ``limits``: one HTTP client for the process's life."""
        settings = Settings.load(config, env)
        async with make_client(settings) as client:
            transport = Transport(client, settings)
            api: LlmApi = OllamaApi(transport) if settings.api == "ollama" else OpenAiApi(transport)
            view.server = _Server(settings, api)
            try:
                yield view.server
            finally:
                view.server = None

    @provider.health_check
    async def health() -> dict[str, Any]:
        if view.server is None:
            return {"server": "not configured"}
        return await _health(view.server)

    @provider.method(
        "llm/chat",
        params_schema=schemas.CHAT,
        result_schema=schemas.COMPLETION_RESULT,
        description="Chat completion; tokens stream as output deltas",
        streaming=True,
        idempotent=True,
        file_params=("file_path",),
    )
    async def chat(ctx: RequestContext, **params: Any) -> dict[str, Any]:
        server: _Server = ctx.state
        messages = _messages(params, _roots(ctx, server, params))
        return await _chat(ctx, server, params, messages, kind="chat")

    @provider.method(
        "llm/vision",
        params_schema=schemas.VISION,
        result_schema=schemas.COMPLETION_RESULT,
        description="Chat about images (image_path files are read and base64-encoded)",
        streaming=True,
        idempotent=True,
        file_params=("file_path", "image_path"),
    )
    async def vision(ctx: RequestContext, **params: Any) -> dict[str, Any]:
        server: _Server = ctx.state
        roots = _roots(ctx, server, params)
        images = list(params.get("images") or []) + encode_images(_paths(params.get("image_path")), "image_path", roots)
        messages = attach_images(_messages(params, roots), images)
        return await _chat(ctx, server, params, messages, kind="vision")

    @provider.method(
        "llm/generate",
        params_schema=schemas.GENERATE,
        result_schema=schemas.COMPLETION_RESULT,
        description="Raw completion of a prompt; tokens stream as output deltas",
        streaming=True,
        idempotent=True,
        file_params=("file_path",),
    )
    async def generate(ctx: RequestContext, **params: Any) -> dict[str, Any]:
        server: _Server = ctx.state
        roots = _roots(ctx, server, params)
        prompt = params["prompt"] + "".join(file_block(p, roots) for p in _paths(params.get("file_path")))
        call = GenerateCall(
            model=params.get("model") or server.settings.default_models["chat"],
            prompt=prompt,
            system=params.get("system"),
            images=list(params.get("images") or []),
            sampling=_sampling(params),
            format=params.get("format"),
            keep_alive=params.get("keep_alive"),
            think=params.get("think"),
        )
        if call.think:
            await _require(server, call.model, "thinking", "does not think; leave out `think`")
        completion = await server.api.generate(call, _delta_sink(ctx, call.sampling.max_tokens))
        return _completion_result(completion, params.get("format"))

    @provider.method(
        "llm/embed",
        params_schema=schemas.EMBED,
        result_schema=schemas.EMBED_RESULT,
        description="Embedding vectors for a string or a list of strings",
        idempotent=True,
    )
    async def embed(ctx: RequestContext, **params: Any) -> dict[str, Any]:
        server: _Server = ctx.state
        inputs = params["input"]
        result = await server.api.embed(
            params.get("model") or server.settings.default_models["embedding"],
            [inputs] if isinstance(inputs, str) else list(inputs),
        )
        return {
            "embeddings": result.embeddings,
            "model": result.model,
            "usage": {"prompt_tokens": result.prompt_tokens, "completion_tokens": None},
            "durations": _durations(result.durations_ms),
        }

    @provider.method(
        "llm/models",
        params_schema=schemas.MODELS,
        result_schema=schemas.MODELS_RESULT,
        description="Models the server has, with sizes in bytes",
        idempotent=True,
        cacheable=False,  # what the server has now, not a function of the parameters
    )
    async def models(ctx: RequestContext) -> dict[str, Any]:
        entries = await ctx.state.api.models()
        return {
            "models": [
                {"name": m.name, "size": m.size, "modified_at": m.modified_at, "details": m.details}
                for m in entries
            ]
        }

    return provider


async def _chat(
    ctx: RequestContext, server: _Server, params: dict[str, Any], messages: list[dict[str, Any]], kind: str
) -> dict[str, Any]:
    model = params.get("model") or server.settings.default_models[kind]
    if kind == "vision":
        await _require(server, model, "vision", "cannot see images; use a vision model such as llava")
    call = ChatCall(
        model=model,
        messages=messages,
        sampling=_sampling(params),
        format=params.get("format"),
        keep_alive=params.get("keep_alive"),
        think=params.get("think"),
    )
    if call.think:
        await _require(server, model, "thinking", "does not think; leave out `think`")
    completion = await server.api.chat(call, _delta_sink(ctx, call.sampling.max_tokens))
    return _completion_result(completion, params.get("format"))


async def _require(server: _Server, model: str, capability: str, problem: str) -> None:
    """Fails early and clearly where Ollama would ignore the request or answer a terse 400."""
    capabilities = await server.api.capabilities(model)
    if capabilities is not None and capability not in capabilities:
        raise TaskFailed(
            f"model '{model}' {problem} (it can: {', '.join(capabilities) or 'nothing listed'})",
            type="Unsupported",
            retryable=False,
        )


def _roots(ctx: RequestContext, server: _Server, params: dict[str, Any]) -> Roots:
    """Where this task's files may be read from (``gleitzeit_sdk.confined``)."""
    return Roots.of(ctx.meta, params, server.settings.hidden)


def _messages(params: dict[str, Any], roots: Roots) -> list[dict[str, Any]]:
    messages = chat_messages(params.get("messages"), params.get("system"), params.get("prompt"))
    for path in _paths(params.get("file_path")):
        messages = append_to_last_user(messages, file_block(path, roots))
    return messages


def _paths(value: str | list[str] | None) -> list[str]:
    """``file_path``/``image_path`` (one or a list); a relative path is the workflow folder's, as
    ``python/execute``'s ``file`` is (``Roots`` resolves it there; the loader rewrites the
    predecessor's paths to it)."""
    return [value] if isinstance(value, str) else list(value or [])


def _sampling(params: dict[str, Any]) -> Sampling:
    stop = params.get("stop")
    return Sampling(
        temperature=params.get("temperature"),
        top_p=params.get("top_p"),
        seed=params.get("seed"),
        stop=[stop] if isinstance(stop, str) else stop,
        max_tokens=params.get("max_tokens"),
        extra=dict(params.get("options") or {}),
    )


def _delta_sink(ctx: RequestContext, max_tokens: int | None) -> DeltaSink | None:
    """Stream only when the host asked for live output (it sent a progress token).

    Each delta goes out as output, and the count of deltas so far (about one token each)
    as progress, out of ``max_tokens`` when the task set it.
    """
    if ctx.progress_token is None:
        return None
    count = 0

    async def sink(text: str) -> None:
        nonlocal count
        count += 1
        await ctx.output("delta", text)
        await ctx.progress(count, total=max_tokens)

    return sink


def _completion_result(c: Completion, format: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "content": c.content,
        "response": c.content,
        "model": c.model,
        "role": c.role,
        "done_reason": c.done_reason,
        "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens},
        "durations": _durations(c.durations_ms),
    }
    if c.thinking:
        result["thinking"] = c.thinking
    if format is not None:
        result["parsed"] = parse_structured(c.content, format)
    return result


def _durations(ms: dict[str, float | None]) -> dict[str, float | None]:
    return {f"{k}_ms": ms.get(k) for k in ("load", "prompt_eval", "eval", "total")}


#: health's `server` for a failed call: "unreachable" only when nothing answered; a server that
#: answered with a 404 for the route speaks another API ("wrong_api"); anything else it said is "error".
_HEALTH_OF_FAILURE = {"ServerUnreachable": "unreachable", "ConnectionLost": "unreachable",
                      "ServerTimeout": "unresponsive", "EndpointNotFound": "wrong_api"}


async def _health(server: _Server) -> dict[str, Any]:
    """Server version and whether each default model is present; never raises for a dead server."""
    s = server.settings
    info: dict[str, Any] = {"api": s.api, "endpoint": s.endpoint}
    try:
        with anyio.fail_after(HEALTH_TIMEOUT):
            info["server_version"] = await server.api.version()
            names = {m.name for m in await server.api.models()}
    except TaskFailed as exc:
        return {**info, "server": _HEALTH_OF_FAILURE.get(exc.data["type"], "error"), "error": exc.message}
    except TimeoutError:
        return {**info, "server": "unresponsive", "error": f"no answer within {HEALTH_TIMEOUT:g} s"}
    info["server"] = "ok"
    info["default_models"] = {kind: {"name": name, "present": _present(name, names)} for kind, name in s.default_models.items()}
    return info


def _present(name: str, available: set[str]) -> bool:
    """Ollama lists ``llama3.2:latest`` for a model pulled as ``llama3.2``."""
    return name in available or (":" not in name and f"{name}:latest" in available)
