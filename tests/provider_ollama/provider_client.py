"""Drives ``python -m provider_ollama`` as a real subprocess over the SDK protocol.

Built on ``gleitzeit_sdk.testing`` (spawn + a line-level JSON-RPC client), plus the one thing
LLM tests need on top: a call that also collects the ``$/output`` notifications of its token.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gleitzeit_sdk.testing import WireClient, spawn

REPO = Path(__file__).resolve().parents[2]
_tokens = itertools.count(1)


@dataclass
class Call:
    response: dict[str, Any]
    notifications: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> Any:
        assert "result" in self.response, f"expected a result, got {self.response}"
        return self.response["result"]

    @property
    def error(self) -> dict[str, Any]:
        assert "error" in self.response, f"expected an error, got {self.response}"
        return self.response["error"]

    @property
    def deltas(self) -> list[str]:
        outs = [n["params"] for n in self.notifications if n["method"] == "$/output"]
        assert [o["seq"] for o in outs] == list(range(len(outs))), "output seq must count up from 0"
        assert all(o["stream"] == "delta" for o in outs)
        return [o["data"] for o in outs]

    @property
    def progress(self) -> list[tuple[float, float | None]]:
        return [(n["params"]["progress"], n["params"].get("total")) for n in self.notifications if n["method"] == "$/progress"]


def provider_env(**extra: str) -> dict[str, str]:
    """A clean environment: a developer's own GLEITZEIT_OLLAMA_URL must not leak into tests."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **extra}


@asynccontextmanager
async def running_provider(config: dict[str, Any], **env: str) -> AsyncIterator[WireClient]:
    async with spawn([sys.executable, "-m", "provider_ollama"], env=provider_env(**env), cwd=str(REPO)) as proc:
        await proc.client.handshake(config=config, timeout=15)
        yield proc.client


async def call(client: WireClient, method: str, params: dict[str, Any], *, stream: bool = False, timeout: float = 10) -> Call:
    """One request; with ``stream`` it carries a progress token and collects that token's notifications."""
    if stream:
        token = f"t{next(_tokens)}"
        params = {**params, "_meta": {"progressToken": token}}
    start = len(client.log)
    response = await client.request(method, params, timeout=timeout)
    notes = [m for m in client.log[start:] if "method" in m and "id" not in m]
    if stream:
        notes = [n for n in notes if (n.get("params") or {}).get("token") == token]
    return Call(response, notes)
