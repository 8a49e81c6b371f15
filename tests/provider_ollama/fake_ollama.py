"""A small real Ollama look-alike on a loopback port, for tests (there is no Ollama binary here).

Serves Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/embed``, ``/api/tags``,
``/api/version``, ``/api/show``) and, like real Ollama, the OpenAI-compatible ``/v1/*``
routes; field names follow Ollama's docs/api.md and docs.ollama.com/api. Streaming is
NDJSON (native) or SSE (``/v1``) over chunked transfer encoding.

Replies are scripted with ``Reply`` objects, consumed in order by generation requests;
with none queued, ``default_reply`` answers (by default: echo the prompt at once). Every request is recorded, and a client that
hangs up mid-stream is recorded in ``disconnects``.
"""

from __future__ import annotations

import hashlib
import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODELS: dict[str, dict[str, Any]] = {
    "llama3.2:latest": {"size": 2019393189, "family": "llama", "parameter_size": "3.2B", "capabilities": ["completion", "tools"]},
    "llava:latest": {"size": 4733363377, "family": "llama", "parameter_size": "7B", "capabilities": ["completion", "vision"]},
    "qwen3:latest": {"size": 5225387923, "family": "qwen3", "parameter_size": "8.2B", "capabilities": ["completion", "thinking", "tools"]},
    "nomic-embed-text:latest": {"size": 274302450, "family": "nomic-bert", "parameter_size": "137M", "capabilities": ["embedding"]},
}
VERSION = "0.6.8"
EMBED_DIM = 8


@dataclass
class Reply:
    """One scripted answer to the next chat/generate/completions request."""

    text: str | None = None  # None: echo the prompt
    chunks: list[str] | None = None  # explicit streaming split; default: word by word
    delay: float = 0.0  # seconds before each streamed chunk (and before a non-streamed reply)
    status: int = 200
    error: str | None = None  # with status != 200: the error message
    raw: bytes | None = None  # sent as the body verbatim (malformed replies)
    stream_error: str | None = None  # an {"error": ...} line after the chunks instead of done
    hang_up: bool = False  # close the connection after the chunks, mid-body (a crashed server)
    done_reason: str = "stop"
    thinking: str | None = None


@dataclass
class Seen:
    method: str
    path: str
    body: Any


@dataclass
class FakeOllama:
    models: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(MODELS))
    replies: deque[Reply] = field(default_factory=deque)
    default_reply: Reply = field(default_factory=Reply)  # when no scripted reply is queued
    requests: list[Seen] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)  # paths whose client hung up mid-stream
    disconnected: threading.Event = field(default_factory=threading.Event)
    token_embeddings: bool = False  # /v1/embeddings answers per token, like llama-cpp-python without pooling
    openai_only: bool = False  # no /api/* routes, 404s as llama.cpp's server sends them (not Ollama)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def bodies(self, path: str) -> list[Any]:
        return [r.body for r in self.requests if r.path == path]

    def start(self) -> "FakeOllama":
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeOllama":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def resolve(self, name: Any) -> str | None:
        """Ollama's default tag is ``latest``."""
        if not isinstance(name, str):
            return None
        full = name if ":" in name else f"{name}:latest"
        return full if full in self.models else None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client resetting an idle keep-alive connection is normal here, not worth a traceback."""


class ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeOllama
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # -- routing ------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        fake = self.server_state
        fake.requests.append(Seen(method, self.path, body))
        routes = {
            ("GET", "/api/version"): lambda: self._json(200, {"version": VERSION}),
            ("GET", "/api/tags"): self._tags,
            ("POST", "/api/show"): lambda: self._show(body),
            ("POST", "/api/embed"): lambda: self._embed(body, openai=False),
            ("POST", "/api/chat"): lambda: self._generation(body, "chat"),
            ("POST", "/api/generate"): lambda: self._generation(body, "generate"),
            ("GET", "/v1/models"): self._v1_models,
            ("POST", "/v1/embeddings"): lambda: self._embed(body, openai=True),
            ("POST", "/v1/chat/completions"): lambda: self._generation(body, "v1chat"),
            ("POST", "/v1/completions"): lambda: self._generation(body, "v1text"),
        }
        route = routes.get((method, self.path))
        if fake.openai_only and self.path.startswith("/api/"):
            route = None
        if route is None and fake.openai_only:  # llama.cpp's server
            self._json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})
            return
        if route is None:  # Ollama's router (gin)
            self._send(404, "text/plain", b"404 page not found")
            return
        if method == "POST" and not isinstance(body, dict):
            self._json(400, {"error": "invalid request body"})
            return
        try:
            route()
        except ClientGone:
            fake.disconnects.append(self.path)
            fake.disconnected.set()
            self.close_connection = True

    # -- plain endpoints -----------------------------------------------------------

    def _tags(self) -> None:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2026-11-01T10:00:00.000000000Z",
                "size": info["size"],
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": info["family"],
                    "families": [info["family"]],
                    "parameter_size": info["parameter_size"],
                    "quantization_level": "Q4_K_M",
                },
            }
            for name, info in self.server_state.models.items()
        ]
        self._json(200, {"models": models})

    def _show(self, body: Any) -> None:
        name = self.server_state.resolve((body or {}).get("model"))
        if name is None:
            self._json(404, {"error": f"model '{(body or {}).get('model')}' not found"})
            return
        info = self.server_state.models[name]
        self._json(
            200,
            {
                "modelfile": f"FROM {name}",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": {"format": "gguf", "family": info["family"], "parameter_size": info["parameter_size"]},
                "model_info": {"general.architecture": info["family"]},
                "capabilities": info["capabilities"],
            },
        )

    def _v1_models(self) -> None:
        data = [{"id": n, "object": "model", "created": 1761990000, "owned_by": "library"} for n in self.server_state.models]
        self._json(200, {"object": "list", "data": data})

    def _embed(self, body: dict[str, Any], openai: bool) -> None:
        if not self._model_or_404(body, openai):
            return
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        vectors = [_vector(t) for t in texts]
        if openai:
            if self.server_state.token_embeddings:  # two "tokens" per input: the vector and its double
                vectors = [[v, [2 * x for x in v]] for v in vectors]  # type: ignore[misc]
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
            self._json(200, {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})
        else:
            self._json(200, {"model": body["model"], "embeddings": vectors, "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": len(texts)})

    # -- generation ----------------------------------------------------------------

    def _generation(self, body: dict[str, Any], kind: str) -> None:
        openai = kind.startswith("v1")
        fake = self.server_state
        reply = fake.replies.popleft() if fake.replies else fake.default_reply
        if reply.status != 200:
            self._wait(reply.delay)
            payload = {"error": {"message": reply.error, "type": "api_error"}} if openai else {"error": reply.error}
            self._json(reply.status, payload)
            return
        if not self._model_or_404(body, openai):
            return
        if reply.raw is not None:
            self._wait(reply.delay)
            self._send(200, "application/json", reply.raw)
            return
        text = reply.text if reply.text is not None else "echo: " + _prompt_of(body, kind)
        chunks = reply.chunks if reply.chunks is not None else _words(text)
        stream = body.get("stream", not openai)  # Ollama streams by default, OpenAI does not
        if openai:
            self._v1_generation(body, kind, reply, text, chunks, stream)
        elif stream:
            self._ndjson_stream(body, kind, reply, chunks)
        else:
            self._wait(reply.delay)
            self._json(200, _ollama_chunk(body, kind, text, reply.thinking, final=_final_stats(body, text, reply)))

    def _ndjson_stream(self, body: dict[str, Any], kind: str, reply: Reply, chunks: list[str]) -> None:
        self._start_chunked("application/x-ndjson")
        if reply.thinking:
            self._chunk(json.dumps(_ollama_chunk(body, kind, "", reply.thinking)) + "\n")
        for piece in chunks:
            self._wait(reply.delay)
            self._chunk(json.dumps(_ollama_chunk(body, kind, piece, None)) + "\n")
        if reply.hang_up:
            self._hang_up()
            return
        if reply.stream_error:
            self._chunk(json.dumps({"error": reply.stream_error}) + "\n")
        else:
            final = _final_stats(body, "".join(chunks), reply)
            self._chunk(json.dumps(_ollama_chunk(body, kind, "", None, final=final)) + "\n")
        self._end_chunked()

    def _v1_generation(self, body: dict[str, Any], kind: str, reply: Reply, text: str, chunks: list[str], stream: bool) -> None:
        usage = {"prompt_tokens": len(_prompt_of(body, kind).split()), "completion_tokens": len(chunks)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-1", "created": 1761990000, "model": body["model"]}
        if not stream:
            self._wait(reply.delay)
            if kind == "v1chat":
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reply.done_reason}
                self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            else:
                choice = {"index": 0, "text": text, "finish_reason": reply.done_reason}
                self._json(200, {**base, "object": "text_completion", "choices": [choice], "usage": usage})
            return
        obj = "chat.completion.chunk" if kind == "v1chat" else "text_completion"
        self._start_chunked("text/event-stream")
        for piece in chunks:
            self._wait(reply.delay)
            part = {"delta": {"role": "assistant", "content": piece}} if kind == "v1chat" else {"text": piece}
            self._chunk(_sse({**base, "object": obj, "choices": [{"index": 0, **part, "finish_reason": None}]}))
        if reply.stream_error:
            self._chunk(_sse({"error": {"message": reply.stream_error, "type": "api_error"}}))
        else:
            last = {"delta": {}} if kind == "v1chat" else {"text": ""}
            self._chunk(_sse({**base, "object": obj, "choices": [{"index": 0, **last, "finish_reason": reply.done_reason}]}))
            if (body.get("stream_options") or {}).get("include_usage"):
                self._chunk(_sse({**base, "object": obj, "choices": [], "usage": usage}))
            self._chunk("data: [DONE]\n\n")
        self._end_chunked()

    # -- helpers -------------------------------------------------------------------

    def _model_or_404(self, body: dict[str, Any], openai: bool) -> bool:
        if self.server_state.resolve(body.get("model")) is not None:
            return True
        message = f"model '{body.get('model')}' not found"
        self._json(404, {"error": {"message": message, "type": "api_error"}} if openai else {"error": message})
        return False

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, "application/json; charset=utf-8", json.dumps(obj).encode())

    def _send(self, status: int, ctype: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, text: str) -> None:
        data = text.encode()
        try:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            raise ClientGone from None

    def _hang_up(self) -> None:
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def _end_chunked(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            raise ClientGone from None

    def _wait(self, seconds: float) -> None:
        """Sleep, but notice at once when the client hangs up (its socket turns readable at EOF)."""
        deadline = time.monotonic() + seconds
        sock: socket.socket = self.connection
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], min(left, 0.05))
            if readable:
                try:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        raise ClientGone
                except (ConnectionResetError, OSError):
                    raise ClientGone from None
                time.sleep(min(left, 0.01))  # pipelined bytes: keep sleeping


def _prompt_of(body: dict[str, Any], kind: str) -> str:
    if kind in ("generate", "v1text"):
        return str(body.get("prompt", ""))
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    if not users:
        return ""
    content = users[-1].get("content", "")
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return str(content)


def _words(text: str) -> list[str]:
    """Split like a tokenizer would, keeping the spaces: joining the chunks gives the text back."""
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
    return [w for w in out if w]


def _ollama_chunk(body: dict[str, Any], kind: str, text: str, thinking: str | None, final: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"model": body["model"], "created_at": "2026-11-27T10:00:00.000000Z"}
    if kind == "chat":
        msg: dict[str, Any] = {"role": "assistant", "content": text}
        if thinking:
            msg["thinking"] = thinking
        obj["message"] = msg
    else:
        obj["response"] = text
        if thinking:
            obj["thinking"] = thinking
    obj["done"] = final is not None
    obj.update(final or {})
    return obj


def _final_stats(body: dict[str, Any], text: str, reply: Reply) -> dict[str, Any]:
    return {
        "done_reason": reply.done_reason,
        "total_duration": 4_883_583_458,
        "load_duration": 1_334_875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342_546_000,
        "eval_count": len(_words(text)),
        "eval_duration": 4_535_599_000,
    }


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 6) for b in digest[:EMBED_DIM]]


if __name__ == "__main__":  # manual runs: `python tests/provider_ollama/fake_ollama.py`
    with FakeOllama() as fake:
        print(f"fake Ollama at {fake.url}; export GLEITZEIT_OLLAMA_URL={fake.url}", flush=True)
        threading.Event().wait()
