"""The provider in OpenAI mode against a real model. Its words vary between calls even at
temperature 0, so these tests check shape: non-empty text, finish reasons, token counts,
deltas adding up to the final text, cancellation leaving the server usable."""

from __future__ import annotations

import json
import statistics
import time

import anyio
import pytest

from gleitzeit_sdk import codes
from provider_client import call, running_provider

pytestmark = pytest.mark.anyio

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]
FINISH = {"stop", "length"}


def _config(server) -> dict:
    return {"api": "openai", "endpoint": server.url, "default_models": {"chat": server.model, "embedding": server.model}}


async def test_chat_plain_and_streamed(real_server) -> None:
    async with running_provider(_config(real_server)) as client:
        plain = await call(client, "llm/chat", {"messages": QUESTION, "max_tokens": 40, "temperature": 0}, timeout=120)
        streamed = await call(client, "llm/chat", {"messages": QUESTION, "max_tokens": 40}, stream=True, timeout=120)
    r = plain.result
    assert r["content"].strip() and r["content"] == r["response"]
    assert r["done_reason"] in FINISH and r["role"] == "assistant"
    assert 0 < r["usage"]["completion_tokens"] <= 40 and r["usage"]["prompt_tokens"] > 0
    s = streamed.result
    assert len(streamed.deltas) > 1
    assert s["content"] == "".join(streamed.deltas) and s["content"].strip()
    assert s["done_reason"] in FINISH
    assert s["usage"]["completion_tokens"] == len(streamed.deltas)  # one token per chunk when usage is not sent
    assert s["durations"]["prompt_eval_ms"] > 0 and s["durations"]["eval_ms"] >= 0


async def test_max_tokens_limits_the_reply(real_server) -> None:
    async with running_provider(_config(real_server)) as client:
        c = await call(client, "llm/chat", {"prompt": "Tell me a long story about a dragon.", "max_tokens": 5}, timeout=120)
    assert c.result["done_reason"] == "length" and c.result["usage"]["completion_tokens"] <= 5


async def test_generate_streams(real_server) -> None:
    async with running_provider(_config(real_server)) as client:
        c = await call(client, "llm/generate", {"prompt": "The capital of France is", "max_tokens": 12}, stream=True, timeout=120)
    assert c.result["content"] == "".join(c.deltas) and c.result["content"].strip()
    assert c.result["done_reason"] in FINISH


async def test_json_format_is_parsed(real_server) -> None:
    params = {"prompt": "Give a JSON object with a key colour set to a colour name.", "format": "json", "max_tokens": 60, "temperature": 0}
    async with running_provider(_config(real_server)) as client:
        c = await call(client, "llm/chat", params, timeout=120)
    if "error" in c.response:  # a small model may not close the object within max_tokens
        data = c.error["data"]
        assert data["type"] == "FormatMismatch" and data["retryable"] is True
    else:
        assert c.result["parsed"] == json.loads(c.result["content"])


async def test_embed_and_models(real_server) -> None:
    async with running_provider(_config(real_server)) as client:
        e = await call(client, "llm/embed", {"input": ["red", "a green field"]}, timeout=120)
        models = await call(client, "llm/models", {})
        health = (await client.request("health", {}))["result"]
    vectors = e.result["embeddings"]
    assert len(vectors) == 2 and len(vectors[0]) == len(vectors[1]) > 0 and vectors[0] != vectors[1]
    assert real_server.model in {m["name"] for m in models.result["models"]}
    assert health["server"] == "ok" and health["default_models"]["chat"]["present"] is True


async def test_cancel_mid_stream_leaves_the_server_usable(real_server) -> None:
    async with running_provider(_config(real_server)) as client:
        req_id = client.next_id()
        params = {"prompt": "Write a very long essay about the sea.", "max_tokens": 1500, "_meta": {"progressToken": "x"}}
        await client.send({"jsonrpc": "2.0", "id": req_id, "method": "llm/chat", "params": params})
        with anyio.fail_after(120):
            while (await client.receive(timeout=120)).get("method") != "$/output":
                pass
        await client.notify("$/cancelRequest", {"id": req_id})
        cancelled = await client.response_to(req_id, timeout=30)
        after = await call(client, "llm/chat", {"prompt": "Say yes.", "max_tokens": 5}, timeout=120)
    assert cancelled["error"]["code"] == codes.CANCELLED
    assert after.result["content"].strip()


async def test_report_speed(real_server) -> None:
    """Prints tokens/s and latencies for the record (run with -s); asserts nothing about time."""
    runs = []
    async with running_provider(_config(real_server)) as client:
        await call(client, "llm/chat", {"prompt": "Hi", "max_tokens": 4}, timeout=120)  # warm-up
        for i in range(5):
            t0 = time.perf_counter()
            c = await call(client, "llm/chat", {"prompt": f"Describe autumn in the city, take {i}.", "max_tokens": 120}, stream=True, timeout=120)
            wall = (time.perf_counter() - t0) * 1000
            d = c.result["durations"]
            tokens = c.result["usage"]["completion_tokens"]
            runs.append({"tokens": tokens, "ttft_ms": d["prompt_eval_ms"], "eval_ms": d["eval_ms"], "wall_ms": wall})
        plain = []
        for i in range(5):
            t0 = time.perf_counter()
            c = await call(client, "llm/chat", {"prompt": f"Say a short greeting, take {i}.", "max_tokens": 16}, timeout=120)
            plain.append({"wall_ms": (time.perf_counter() - t0) * 1000, "server_ms": c.result["durations"]["total_ms"]})
    assert all(r["tokens"] > 0 for r in runs)
    tps = [r["tokens"] / (r["eval_ms"] / 1000) for r in runs if r["eval_ms"]]
    print(
        f"\n[real model {real_server.model}] {len(runs)} streamed chats: "
        f"{statistics.median(tps):.0f} tokens/s median (min {min(tps):.0f}, max {max(tps):.0f}); "
        f"time to first token median {statistics.median(r['ttft_ms'] for r in runs):.0f} ms; "
        f"task round trip median {statistics.median(r['wall_ms'] for r in runs):.0f} ms "
        f"for median {statistics.median(r['tokens'] for r in runs):.0f} tokens; "
        f"non-streamed 16-token chat: task round trip median {statistics.median(p['wall_ms'] for p in plain):.0f} ms, "
        f"of which HTTP call {statistics.median(p['server_ms'] for p in plain):.0f} ms"
    )
