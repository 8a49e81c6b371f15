"""`provider list|health|add|remove|check` with the built-in providers and the example Node provider."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.cli.conftest import Cli
from tests.helpers.cli import REPO

NODE_MANIFEST = REPO / "examples" / "providers" / "node" / "manifest.yaml"
PROBE_KEYS = {"name", "version", "manifest", "protocols", "state", "healthy", "methods", "ping_ms", "pid", "health",
              "error"}


def test_list_and_health(mem: Cli, home: Path):
    (home / "providers").mkdir()
    (home / "providers" / "broken.yaml").write_text("name: [\n")
    listed = mem.ok("provider", "list", "--json").json()
    by_name = {p["name"]: p for p in listed}
    assert set(by_name["python"]) == PROBE_KEYS and by_name["python"]["methods"] == ["python/execute"]
    assert by_name["python"]["state"] == "ok" and by_name["python"]["protocols"] == ["python/v1"]
    assert "llm/chat" in by_name["ollama"]["methods"]
    assert by_name[None]["state"] == "invalid" and "broken.yaml" in by_name[None]["error"]  # listed, not fatal

    health = mem.ok("provider", "health", "python", "--json").json()
    assert health["healthy"] is True and health["ping_ms"] > 0 and health["pid"] > 0
    assert health["health"]["status"] == "ok" and "active" in health["health"]["sandbox"]

    no_server = mem("provider", "health", "ollama", "--json", GLEITZEIT_OLLAMA_URL="http://127.0.0.1:9")
    assert no_server.code == 1
    assert no_server.json()["state"] == "unhealthy" and "unreachable" in no_server.json()["error"]
    unknown = mem("provider", "health", "nope")
    assert unknown.code == 1 and "no provider named 'nope'" in unknown.err


def test_add_use_remove_a_provider(mem: Cli, home: Path):
    added = mem.ok("provider", "add", str(NODE_MANIFEST), "--json").json()
    assert added == {"name": "text", "version": "1.0.0", "protocols": ["text/v1"],
                     "manifest": str(home / "providers" / "text.yaml")}
    assert mem("provider", "add", str(NODE_MANIFEST)).code == 1  # already registered
    # the copy still finds provider.js next to the original manifest
    upper = mem.ok("task", "submit", "text/upper", "--params", '{"text": "hi"}', "--json").json()
    assert upper["status"] == "completed" and "HI" in str(upper["result"])
    builtin = mem("provider", "remove", "python")
    assert builtin.code == 1 and "providers.python.enabled false" in builtin.err
    assert mem.ok("provider", "remove", "text", "--json").json()["name"] == "text"
    assert not (home / "providers" / "text.yaml").exists()
    assert mem("provider", "remove", "text").code == 1
    bad = home / "bad.yaml"
    bad.write_text("name: x\ncommand: no-such-program-here\n")
    r = mem("provider", "add", str(bad))
    assert r.code == 2 and "not found" in r.err


def test_check_a_manifest_and_a_command_line(mem: Cli):
    good = mem("provider", "check", str(NODE_MANIFEST), "--case", "requests.ping", "--case", "requests.health", "--json")
    assert good.code == 0
    report = good.json()
    assert report["passed"] is True and [r["name"] for r in report["results"]] == ["requests.ping", "requests.health"]
    banner = REPO / "tests" / "sdk" / "broken_providers" / "banner_on_stdout.py"
    bad = mem("provider", "check", "--case", "handshake.silent_before_initialize", "--", sys.executable, str(banner))
    assert bad.code == 1 and "FAIL" in bad.out
    assert mem("provider", "check", "--case", "nope", "--", "true").code == 2
