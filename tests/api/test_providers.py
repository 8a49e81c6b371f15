"""gz.providers / provider_health: real provider processes started and asked (the counting provider
registered in the test's home writes its pid on every start), and `gleitzeit provider …` through them."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import gleitzeit_core as gz
from tests.api.conftest import started
from tests.helpers.cli import gz as gz_cli

pytestmark = pytest.mark.anyio


async def test_the_listing_starts_each_provider_and_keeps_an_unreadable_manifest_as_a_line(starts: Path, home: Path):
    (home / "providers" / "broken.yaml").write_text("name: [\n", encoding="utf-8")
    listing = await gz.providers()
    by_name = {p.name: p for p in listing.probes}
    counting = by_name["counting"]
    assert counting.state == "ok" and counting.methods == ["count/pid", "count/sleep"]
    assert started(starts) == [counting.pid]   # this very process answered the listing
    assert by_name["python"].state == "ok" and by_name["python"].methods == ["python/execute"]
    assert [line for line in listing.invalid if "broken.yaml" in line]

    off = await gz.providers(config={"providers.ollama.enabled": False})
    states = {p.name: (p.state, p.pid) for p in off.probes}
    assert states["ollama"] == ("disabled", None) and states["counting"][0] == "ok"   # not started
    assert started(starts) == [counting.pid, states["counting"][1]]   # a fresh process per listing


async def test_health_asks_one_provider(starts: Path):
    probe = await gz.provider_health("python")
    assert probe.state == "ok" and probe.pid > 0 and probe.ping_ms > 0
    assert probe.health["status"] == "ok" and "active" in probe.health["sandbox"]
    assert started(starts) == []   # only the provider asked for was started

    no_server = await gz.provider_health("ollama", config={"providers.ollama.endpoint": "http://127.0.0.1:9"})
    assert no_server.state == "unhealthy" and "unreachable" in no_server.error
    with pytest.raises(gz.ProviderNotFound, match=r"no provider named 'nope' \(known: .*counting.*python"):
        await gz.provider_health("nope")


def test_the_cli_lists_and_asks_through_the_api(starts: Path, home: Path):
    listed = gz_cli(home, "provider", "list", "--json")
    assert listed.code == 0, listed.err
    api = anyio.run(gz.providers)
    assert {p["name"]: p["methods"] for p in listed.json()} == {p.name: p.methods for p in api.probes}
    unknown = gz_cli(home, "provider", "health", "nope", "--json")
    assert unknown.code == 1 and unknown.json()["kind"] == "not_found"
    assert "no provider named 'nope'" in unknown.json()["error"]
