"""``python -m provider_ollama`` as a real subprocess, against the fake Ollama server."""

from __future__ import annotations

import base64
import socket
import sys
from pathlib import Path

import anyio
import pytest

from fake_ollama import FakeOllama, Reply
from gleitzeit_sdk import codes
from gleitzeit_sdk.testing import initialize_params, spawn
from provider_client import REPO, call, provider_env, running_provider

pytestmark = pytest.mark.anyio

USER = [{"role": "user", "content": "tell me a story"}]


def _config(fake: FakeOllama, **extra):
    return {"endpoint": fake.url, **extra}


def _free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _task_error(c) -> dict:
    assert c.error["code"] == codes.TASK_FAILED, c.error
    return c.error["data"]


async def test_handshake_advertises_llm_methods_and_configured_limit(fake: FakeOllama) -> None:
    async with spawn([sys.executable, "-m", "provider_ollama"], env=provider_env(), cwd=str(REPO)) as proc:
        init = await proc.client.handshake(config=_config(fake, max_in_flight=2), timeout=15)
    assert init["protocols"] == ["llm/v1"]
    assert {m["name"] for m in init["methods"]} == {"llm/chat", "llm/generate", "llm/vision", "llm/embed", "llm/models"}
    assert init["capabilities"]["concurrency"]["maxInFlight"] == 2


async def test_bad_config_fails_the_handshake_naming_the_key() -> None:
    async with spawn([sys.executable, "-m", "provider_ollama"], env=provider_env(), cwd=str(REPO)) as proc:
        resp = await proc.client.request("initialize", initialize_params(config={"api": "gpt"}), timeout=15)
    assert "config api: expected 'ollama' or 'openai', got 'gpt'" in resp["error"]["message"]


async def test_chat_streams_deltas_that_add_up_to_the_result(fake: FakeOllama) -> None:
    async with running_provider(_config(fake)) as client:
        c = await call(client, "llm/chat", {"model": "llama3.2", "messages": USER, "max_tokens": 50}, stream=True)
    assert c.deltas == ["echo:", " tell", " me", " a", " story"]
    assert c.progress == [(1, 50), (2, 50), (3, 50), (4, 50), (5, 50)]  # tokens so far, of max_tokens
    r = c.result
    assert r["content"] == r["response"] == "".join(c.deltas) == "echo: tell me a story"
    assert (r["model"], r["role"], r["done_reason"]) == ("llama3.2", "assistant", "stop")
    assert r["usage"] == {"prompt_tokens": 26, "completion_tokens": 5}
    assert r["durations"] == {"load_ms": 1.335, "prompt_eval_ms": 342.546, "eval_ms": 4535.599, "total_ms": 4883.583}
    assert fake.bodies("/api/chat")[-1]["stream"] is True


async def test_chat_without_a_token_does_not_stream(fake: FakeOllama) -> None:
    params = {"prompt": "hi", "system": "be terse", "max_tokens": 5, "temperature": 0, "stop": "\n", "options": {"num_ctx": 512}}
    async with running_provider(_config(fake, default_models={"chat": "llava"})) as client:
        c = await call(client, "llm/chat", params)
    assert c.result["content"] == "echo: hi"
    assert c.notifications == []  # neither output nor progress
    body = fake.bodies("/api/chat")[-1]
    assert body["stream"] is False
    assert body["model"] == "llava"  # the configured default
    assert body["messages"] == [{"role": "system", "content": "be terse"}, {"role": "user", "content": "hi"}]
    assert body["options"] == {"num_ctx": 512, "temperature": 0, "stop": ["\n"], "num_predict": 5}


def _in_folder(folder: Path) -> dict:
    """The ``_meta`` the engine sends for a workflow in ``folder`` (files are read beneath it)."""
    folder.chmod(0o755)  # as root the provider reads as the sandbox user, who must reach the folder
    return {"_meta": {"workflowDir": str(folder)}}


async def test_file_path_is_inlined_into_the_last_user_message(fake: FakeOllama, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nline two\n")
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "Summarise:"}]
    meta = _in_folder(tmp_path)
    async with running_provider(_config(fake)) as client:
        ok = await call(client, "llm/chat", {"messages": messages, "file_path": str(notes), **meta})
        gen = await call(client, "llm/generate", {"prompt": "Summarise:", "file_path": "notes.txt", **meta})
        missing = await call(client, "llm/chat", {"messages": messages, "file_path": str(tmp_path / "nope.txt"), **meta})
    sent = fake.bodies("/api/chat")[-1]["messages"]
    assert sent[0]["content"] == "first"
    assert sent[-1]["content"] == f"Summarise:\n\nFile content from {notes}:\nline one\nline two\n"
    assert ok.result["content"].startswith("echo: Summarise:")
    assert fake.bodies("/api/generate")[-1]["prompt"] == sent[-1]["content"]  # a relative path is shown as the folder's file
    assert gen.result["content"].startswith("echo: Summarise:")
    data = _task_error(missing)
    assert data["retryable"] is False and "file_path: file not found" in data["message"]


async def test_generate_and_embed_and_models(fake: FakeOllama) -> None:
    async with running_provider(_config(fake)) as client:
        gen = await call(client, "llm/generate", {"model": "llama3.2", "prompt": "say hi"}, stream=True)
        one = await call(client, "llm/embed", {"input": "a"})
        two = await call(client, "llm/embed", {"model": "nomic-embed-text", "input": ["a", "b"]})
        models = await call(client, "llm/models", {})
    assert gen.result["content"] == "".join(gen.deltas) == "echo: say hi"
    assert fake.bodies("/api/embed")[0] == {"model": "nomic-embed-text", "input": ["a"]}  # default embedding model
    assert len(one.result["embeddings"]) == 1 and len(two.result["embeddings"]) == 2
    assert one.result["embeddings"][0] == two.result["embeddings"][0]
    sizes = {m["name"]: m["size"] for m in models.result["models"]}
    assert sizes == {name: info["size"] for name, info in fake.models.items()}


async def test_vision_reads_and_encodes_image_files(fake: FakeOllama, tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n fake pixels")
    meta = _in_folder(tmp_path)
    async with running_provider(_config(fake)) as client:
        ok = await call(client, "llm/vision", {"prompt": "what is this?", "image_path": str(image), **meta})
        missing = await call(client, "llm/vision", {"prompt": "what is this?", "image_path": str(tmp_path / "dog.png"), **meta})
        none = await call(client, "llm/vision", {"prompt": "what is this?"})
    sent = fake.bodies("/api/chat")[-1]
    assert sent["model"] == "llava"  # default vision model
    assert sent["messages"][-1]["images"] == [base64.b64encode(image.read_bytes()).decode()]
    assert ok.result["content"] == "echo: what is this?"
    assert _task_error(missing)["message"] == (f"image_path: file not found: {str(tmp_path / 'dog.png')!r} "
                                               f"(looked in {str(tmp_path)!r})")
    assert _task_error(none)["retryable"] is False


async def test_capabilities_are_checked_before_generating(fake: FakeOllama, tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG")
    fake.script(Reply(text="42", thinking="six times seven"))
    meta = _in_folder(tmp_path)
    async with running_provider(_config(fake)) as client:
        blind = await call(client, "llm/vision", {"model": "llama3.2", "prompt": "what?", "image_path": str(image), **meta})
        no_think = await call(client, "llm/chat", {"model": "llama3.2", "prompt": "why?", "think": True})
        thinks = await call(client, "llm/chat", {"model": "qwen3", "prompt": "why?", "think": True})
    assert _task_error(blind)["message"] == (
        "model 'llama3.2' cannot see images; use a vision model such as llava (it can: completion, tools)"
    )
    assert _task_error(no_think)["retryable"] is False and "does not think" in _task_error(no_think)["message"]
    assert fake.bodies("/api/chat") == [fake.bodies("/api/chat")[0]]  # only qwen3's request got through
    assert (thinks.result["content"], thinks.result["thinking"]) == ("42", "six times seven")
    assert fake.bodies("/api/chat")[0]["think"] is True


async def test_structured_output_is_parsed_and_checked(fake: FakeOllama) -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    fake.script(Reply(text='{"age": 22}'), Reply(text='{"age": "old"}'), Reply(text="not json"))
    async with running_provider(_config(fake)) as client:
        ok = await call(client, "llm/chat", {"prompt": "age?", "format": schema})
        wrong = await call(client, "llm/chat", {"prompt": "age?", "format": schema})
        garbage = await call(client, "llm/generate", {"prompt": "age?", "format": "json"})
    assert ok.result["parsed"] == {"age": 22}
    assert fake.bodies("/api/chat")[0]["format"] == schema
    w = _task_error(wrong)
    assert w["retryable"] is True and w["type"] == "FormatMismatch" and "at age" in w["message"]
    g = _task_error(garbage)
    assert g["retryable"] is True and "not valid JSON" in g["message"]


async def test_cancel_mid_stream_closes_the_http_connection(fake: FakeOllama) -> None:
    fake.script(Reply(text="one two three four five six seven eight", delay=0.25))
    async with running_provider(_config(fake)) as client:
        req_id = client.next_id()
        await client.send({"jsonrpc": "2.0", "id": req_id, "method": "llm/chat", "params": {"messages": USER, "_meta": {"progressToken": "c"}}})
        with anyio.fail_after(10):
            while True:  # wait for the first token
                msg = await client.receive(timeout=10)
                if msg.get("method") == "$/output":
                    break
        await client.notify("$/cancelRequest", {"id": req_id})
        resp = await client.response_to(req_id)
        with anyio.fail_after(10):
            await anyio.to_thread.run_sync(fake.disconnected.wait, abandon_on_cancel=True)
        pong = await client.request("ping")
    assert resp["error"]["code"] == codes.CANCELLED
    assert fake.disconnects == ["/api/chat"]
    assert pong["result"] == {}


async def test_errors_say_what_to_do(fake: FakeOllama) -> None:
    fake.script(Reply(status=500, error="CUDA error: out of memory"), Reply(raw=b"<html>Bad Gateway</html>"))
    async with running_provider(_config(fake)) as client:
        crash = await call(client, "llm/chat", {"prompt": "hi"})
        malformed = await call(client, "llm/chat", {"prompt": "hi"})
        missing = await call(client, "llm/chat", {"model": "qwen3:8b", "prompt": "hi"})
        unknown = await call(client, "llm/chat", {"prompt": "hi", "temprature": 0.1})
    c = _task_error(crash)
    assert c["retryable"] is True and c["message"].endswith("answered HTTP 500: CUDA error: out of memory")
    m = _task_error(malformed)
    assert m["retryable"] is False and "got '<html>Bad Gateway</html>'" in m["message"]
    nf = _task_error(missing)
    assert nf["retryable"] is False and nf["message"] == "model 'qwen3:8b' not found; run `ollama pull qwen3:8b`"
    assert unknown.error["code"] == codes.INVALID_PARAMS and "temprature" in unknown.error["message"]


async def test_unreachable_server_is_retryable_and_health_still_answers() -> None:
    url = _free_url()
    async with running_provider({"endpoint": url}) as client:
        c = await call(client, "llm/chat", {"prompt": "hi"})
        health = await client.request("health", {})
    data = _task_error(c)
    assert data["retryable"] is True
    assert data["message"] == f"cannot reach Ollama at {url} (is `ollama serve` running?)"
    assert health["result"]["status"] == "ok"
    assert health["result"]["server"] == "unreachable"


async def test_health_reports_version_and_default_models(fake: FakeOllama) -> None:
    config = _config(fake, default_models={"chat": "llama3.2", "embedding": "bge-m3"})
    async with running_provider(config) as client:
        health = (await client.request("health", {}))["result"]
    assert health["server"] == "ok" and health["server_version"] == "0.6.8"
    assert health["default_models"] == {
        "chat": {"name": "llama3.2", "present": True},
        "vision": {"name": "llava", "present": True},
        "embedding": {"name": "bge-m3", "present": False},
    }


async def test_environment_overrides_the_configured_endpoint(fake: FakeOllama) -> None:
    async with running_provider({"endpoint": _free_url()}, GLEITZEIT_OLLAMA_URL=fake.url) as client:
        c = await call(client, "llm/chat", {"prompt": "hi"})
    assert c.result["content"] == "echo: hi"


async def test_openai_mode_has_the_same_methods_and_result_shape(fake: FakeOllama) -> None:
    async with running_provider({"api": "openai", "endpoint": fake.url + "/v1/"}) as client:
        chat = await call(client, "llm/chat", {"model": "llama3.2", "messages": USER}, stream=True)
        gen = await call(client, "llm/generate", {"model": "llama3.2", "prompt": "say hi"})
        emb = await call(client, "llm/embed", {"input": ["a", "b"]})
        models = await call(client, "llm/models", {})
        missing = await call(client, "llm/chat", {"model": "nope", "prompt": "hi"})
        health = (await client.request("health", {}))["result"]
    assert chat.result["content"] == "".join(chat.deltas) == "echo: tell me a story"
    assert chat.result["usage"] == {"prompt_tokens": 4, "completion_tokens": 5}
    assert chat.result["done_reason"] == "stop" and chat.result["durations"]["total_ms"] > 0
    assert set(chat.result) == set(gen.result) >= {"content", "response", "model", "role", "done_reason", "usage", "durations"}
    assert gen.result["content"] == "echo: say hi"
    assert len(emb.result["embeddings"]) == 2
    assert {m["name"] for m in models.result["models"]} == set(fake.models)
    assert _task_error(missing)["type"] == "ModelNotFound"
    assert health["server"] == "ok" and health["default_models"]["chat"]["present"] is True


async def test_a_route_the_server_lacks_is_not_a_missing_model(fake: FakeOllama) -> None:
    """An OpenAI-compatible server (llama.cpp) used without `api: openai` answers 404
    "File Not Found" on /api/chat: that is the wrong API, not a model to pull."""
    fake.openai_only = True
    async with running_provider(_config(fake)) as client:
        chat = await call(client, "llm/chat", {"model": "llama3.2", "prompt": "hi"})
        health = (await client.request("health", {}))["result"]
    err = _task_error(chat)
    assert err["type"] == "EndpointNotFound" and err["retryable"] is False
    assert err["message"].startswith(f"{fake.url}/api/chat does not exist (HTTP 404: File Not Found)")
    assert "set `api: openai`" in err["message"] and "pull" not in err["message"]
    assert health["server"] == "wrong_api" and "set `api: openai`" in health["error"]


async def test_openai_mode_at_a_wrong_path_says_to_fix_the_endpoint(fake: FakeOllama) -> None:
    """Ollama's own router answers an unknown route with a plain "404 page not found"."""
    async with running_provider({"api": "openai", "endpoint": fake.url + "/llm"}) as client:
        chat = await call(client, "llm/chat", {"model": "llama3.2", "prompt": "hi"})
        missing = await call(client, "llm/chat", {"model": "nope", "prompt": "hi"})
        health = (await client.request("health", {}))["result"]
    err = _task_error(chat)
    assert err["type"] == "EndpointNotFound"
    assert f"{fake.url}/llm/v1/chat/completions does not exist (HTTP 404: '404 page not found')" in err["message"]
    assert "server's base URL" in err["message"] and "not found;" not in err["message"]
    assert _task_error(missing)["type"] == "EndpointNotFound"  # the route is what is missing, not the model
    assert health["server"] == "wrong_api"


async def test_missing_model_is_still_named_with_the_pull_hint(fake: FakeOllama) -> None:
    async with running_provider(_config(fake)) as client:
        missing = await call(client, "llm/embed", {"model": "bge-m3", "input": ["a"]})
        health = (await client.request("health", {}))["result"]
    assert _task_error(missing)["message"] == "model 'bge-m3' not found; run `ollama pull bge-m3`"
    assert health["server"] == "ok"
