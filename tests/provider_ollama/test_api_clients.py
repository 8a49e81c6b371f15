"""The two wire APIs against the fake server, in process: request fields, result shape, errors."""

from __future__ import annotations

import socket

import anyio
import pytest

from fake_ollama import FakeOllama, Reply
from gleitzeit_sdk.errors import TaskFailed
from provider_ollama.api_types import ChatCall, GenerateCall, Sampling
from provider_ollama.ollama_api import OllamaApi
from provider_ollama.openai_api import OpenAiApi
from provider_ollama.settings import Settings
from provider_ollama.transport import Transport, make_client

pytestmark = pytest.mark.anyio


def _api(url: str, api: str = "ollama"):
    settings = Settings.load({"endpoint": url, "api": api}, env={})
    client = make_client(settings)
    transport = Transport(client, settings)
    return client, (OllamaApi(transport) if api == "ollama" else OpenAiApi(transport))


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("api", ["ollama", "openai"])
async def test_streamed_chat_deltas_add_up_to_the_content(fake: FakeOllama, api: str) -> None:
    client, llm = _api(fake.url, api)
    deltas: list[str] = []

    async def sink(text: str) -> None:
        deltas.append(text)

    async with client:
        c = await llm.chat(ChatCall("llama3.2", _user("tell me a story")), sink)
    assert c.content == "echo: tell me a story"
    assert deltas == ["echo:", " tell", " me", " a", " story"]
    assert c.done_reason == "stop"
    assert c.completion_tokens == 5
    assert c.prompt_tokens is not None
    assert c.durations_ms["total"] is not None


@pytest.mark.parametrize("api", ["ollama", "openai"])
async def test_non_streamed_generate(fake: FakeOllama, api: str) -> None:
    fake.script(Reply(text="forty-two", done_reason="length"))
    client, llm = _api(fake.url, api)
    async with client:
        c = await llm.generate(GenerateCall("llama3.2", "the answer?", system="be brief"), None)
    assert (c.content, c.done_reason) == ("forty-two", "length")
    body = fake.requests[-1].body
    assert body["stream"] is False if api == "ollama" else "stream" not in body
    if api == "ollama":
        assert (body["prompt"], body["system"]) == ("the answer?", "be brief")
        assert c.durations_ms == {"load": 1.335, "prompt_eval": 342.546, "eval": 4535.599, "total": 4883.583}
    else:
        assert body["prompt"] == "be brief\n\nthe answer?"


async def test_ollama_options_mapping(fake: FakeOllama) -> None:
    client, llm = _api(fake.url)
    sampling = Sampling(temperature=0.2, top_p=0.9, seed=7, stop=["\n"], max_tokens=50, extra={"num_ctx": 2048, "seed": 1})
    schema = {"type": "object"}
    async with client:
        await llm.chat(ChatCall("llama3.2", _user("hi"), sampling, format=schema, keep_alive="1m", think=True), None)
    body = fake.bodies("/api/chat")[-1]
    assert body["options"] == {"num_ctx": 2048, "seed": 7, "temperature": 0.2, "top_p": 0.9, "stop": ["\n"], "num_predict": 50}
    assert (body["format"], body["keep_alive"], body["think"]) == (schema, "1m", True)


async def test_openai_request_fields(fake: FakeOllama) -> None:
    client, llm = _api(fake.url, "openai")
    messages = [{"role": "user", "content": "what is this?", "images": ["QUJD"]}]
    async with client:
        await llm.chat(ChatCall("llava", messages, Sampling(max_tokens=9, extra={"top_k": 3}), format={"type": "object"}), None)
    body = fake.bodies("/v1/chat/completions")[-1]
    assert body["max_tokens"] == 9 and body["top_k"] == 3
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "result", "schema": {"type": "object"}}}
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
    ]


@pytest.mark.parametrize("api", ["ollama", "openai"])
async def test_embed_models(fake: FakeOllama, api: str) -> None:
    client, llm = _api(fake.url, api)
    async with client:
        e = await llm.embed("nomic-embed-text", ["a", "b"])
        models = await llm.models()
        version = await llm.version()
    assert len(e.embeddings) == 2 and e.embeddings[0] != e.embeddings[1]
    assert {m.name for m in models} == set(fake.models)
    if api == "ollama":
        assert version == "0.6.8"
        assert {m.name: m.size for m in models}["llava:latest"] == 4733363377


async def test_openai_per_token_embeddings_are_mean_pooled(fake: FakeOllama) -> None:
    fake.token_embeddings = True
    client, llm = _api(fake.url, "openai")
    async with client:
        pooled = (await llm.embed("nomic-embed-text", ["a"])).embeddings[0]
    fake.token_embeddings = False
    client, llm = _api(fake.url, "openai")
    async with client:
        plain = (await llm.embed("nomic-embed-text", ["a"])).embeddings[0]
    assert pooled == pytest.approx([1.5 * x for x in plain])


async def test_thinking_is_kept_apart(fake: FakeOllama) -> None:
    fake.script(Reply(text="yes", thinking="hmm, let me see"))
    client, llm = _api(fake.url)
    async with client:
        c = await llm.chat(ChatCall("llama3.2", _user("?"), think=True), None)
    assert (c.content, c.thinking) == ("yes", "hmm, let me see")


@pytest.mark.parametrize("api", ["ollama", "openai"])
async def test_model_not_found(fake: FakeOllama, api: str) -> None:
    client, llm = _api(fake.url, api)
    async with client:
        with pytest.raises(TaskFailed) as info:
            await llm.chat(ChatCall("mistral", _user("hi")), None)
    assert info.value.data["retryable"] is False
    assert info.value.data["type"] == "ModelNotFound"
    assert "model 'mistral' not found" in info.value.message
    if api == "ollama":
        assert "run `ollama pull mistral`" in info.value.message


@pytest.mark.parametrize("api", ["ollama", "openai"])
async def test_server_error_is_retryable_and_client_error_is_not(fake: FakeOllama, api: str) -> None:
    fake.script(Reply(status=503, error="server busy"), Reply(status=400, error="bad option"))
    client, llm = _api(fake.url, api)
    async with client:
        with pytest.raises(TaskFailed) as busy:
            await llm.chat(ChatCall("llama3.2", _user("hi")), None)
        with pytest.raises(TaskFailed) as bad:
            await llm.chat(ChatCall("llama3.2", _user("hi")), None)
    assert busy.value.data["retryable"] is True and "HTTP 503: server busy" in busy.value.message
    assert bad.value.data["retryable"] is False and "HTTP 400: bad option" in bad.value.message


async def test_unreachable_server() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    client, llm = _api(url)
    async with client:
        with pytest.raises(TaskFailed) as info:
            await llm.models()
    assert info.value.message == f"cannot reach Ollama at {url} (is `ollama serve` running?)"
    assert info.value.data["retryable"] is True


async def test_malformed_body_is_quoted(fake: FakeOllama) -> None:
    fake.script(Reply(raw=b"<html>502 Bad Gateway from the proxy</html>"))
    client, llm = _api(fake.url)
    async with client:
        with pytest.raises(TaskFailed) as info:
            await llm.chat(ChatCall("llama3.2", _user("hi")), None)
    assert "malformed reply from Ollama" in info.value.message
    assert "'<html>502 Bad Gateway from the proxy</html>'" in info.value.message


@pytest.mark.parametrize("api", ["ollama", "openai"])
async def test_error_in_the_middle_of_a_stream(fake: FakeOllama, api: str) -> None:
    fake.script(Reply(text="half a", stream_error="an error was encountered while running the model"))
    client, llm = _api(fake.url, api)
    got: list[str] = []

    async def sink(text: str) -> None:
        got.append(text)

    async with client:
        with pytest.raises(TaskFailed) as info:
            await llm.chat(ChatCall("llama3.2", _user("hi")), sink)
    assert got == ["half", " a"]
    assert info.value.data["retryable"] is True
    assert info.value.message.endswith("failed: an error was encountered while running the model")


async def test_server_hanging_up_mid_stream_is_retryable(fake: FakeOllama) -> None:
    fake.script(Reply(text="half a", hang_up=True))
    client, llm = _api(fake.url)

    async def sink(text: str) -> None:
        pass

    async with client:
        with pytest.raises(TaskFailed) as info:
            await llm.chat(ChatCall("llama3.2", _user("hi")), sink)
    assert info.value.data["type"] == "ConnectionLost" and info.value.data["retryable"] is True
    assert info.value.message.startswith(f"connection to Ollama at {fake.url} broke:")


async def test_cancelling_closes_the_connection(fake: FakeOllama) -> None:
    fake.script(Reply(text="one two three four five six", delay=0.3))
    client, llm = _api(fake.url)
    first = anyio.Event()

    async def sink(text: str) -> None:
        first.set()

    async with client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(llm.chat, ChatCall("llama3.2", _user("hi")), sink)
            with anyio.fail_after(10):
                await first.wait()
            tg.cancel_scope.cancel()
        with anyio.fail_after(10):
            await anyio.to_thread.run_sync(fake.disconnected.wait, abandon_on_cancel=True)
    assert fake.disconnects == ["/api/chat"]
