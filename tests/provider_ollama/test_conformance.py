"""The SDK's protocol conformance checker against the provider, with the manifest's samples
(the slow one streams from a fake server that answers a token every 0.1 s)."""

from __future__ import annotations

import sys

import pytest

from fake_ollama import FakeOllama, Reply
from gleitzeit_core.providers.manifest import load_manifest
from gleitzeit_sdk.conformance import check_provider
from provider_client import REPO, provider_env


@pytest.mark.anyio
async def test_provider_passes_the_protocol_conformance_checks(fake: FakeOllama) -> None:
    fake.default_reply = Reply(text=" ".join(str(n) for n in range(1, 41)), delay=0.1)
    samples = load_manifest(REPO / "provider_ollama" / "manifest.yaml").conformance
    results = await check_provider(
        [sys.executable, "-m", "provider_ollama"],
        env=provider_env(GLEITZEIT_OLLAMA_URL=fake.url),
        cwd=str(REPO),
        samples=samples,
    )
    failed = [f"{r.name}: {r.detail}" for r in results if r.status == "fail"]
    assert failed == []
    skipped = {r.name for r in results if r.status == "skip"}
    assert skipped <= {"concurrency.out_of_order"}  # needs maxInFlight > 1; ours defaults to 1
    assert "/api/chat" in fake.disconnects  # the cancel cases closed the HTTP stream
