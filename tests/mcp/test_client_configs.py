"""`gleitzeit provider add` with the MCP client configs people already have."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import gz
from tests.mcp.conftest import one_task, run


def test_claude_desktop_config_registers_each_stdio_server(home: Path, work: Path, time_server: str,
                                                           everything: str):
    config = work / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {
        "Time": {"command": time_server, "args": []},
        "everything": {"command": everything, "args": ["stdio"],
                       "env": {"GZ_MARK": "from-config", "GZ_TOKEN": "${env:GZ_TOKEN}"}},
        "remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer x"}},
        "gone": {"command": "no-such-mcp-server-here"},
    }}))
    r = gz(home, "provider", "add", str(config))
    assert r.code == 1, r.err  # "gone" cannot start: a real problem, reported after the others are in
    lines = r.out.splitlines()
    assert f"registered provider 'time' (time/v1) as {home / 'providers' / 'time.yaml'}" in lines
    assert f"registered provider 'everything' (everything/v1) as {home / 'providers' / 'everything.yaml'}" in lines
    assert "skipped 'remote': URL servers are not supported; only stdio servers (with a 'command') are" in lines
    assert any(line.startswith("skipped 'gone': ") and "not found on PATH" in line for line in lines)
    assert len(lines) == 4

    listed = {p["name"]: p for p in gz(home, "provider", "list", "--json").json()}
    assert listed["time"]["methods"] == ["time/convert_time", "time/get_current_time"], listed["time"]
    assert "everything/get-env" in listed["everything"]["methods"], listed["everything"]

    # env adds to the inherited allow-list (PATH stays: the server is a `#!/usr/bin/env node` script);
    # ${env:NAME} passes the launching environment's value through; everything else stays out.
    r, report = run(home, work, one_task("everything/get-env", {}),
                    GZ_TOKEN="secret-from-env", GZ_UNLISTED="must-not-leak")
    assert r.code == 0, r.err
    env = json.loads(report["tasks"]["Task"]["result"]["text"])
    assert env["GZ_MARK"] == "from-config" and env["GZ_TOKEN"] == "secret-from-env" and "PATH" in env
    assert "GZ_UNLISTED" not in env
    assert "secret-from-env" not in (home / "providers" / "everything.yaml").read_text()

    again = gz(home, "provider", "add", str(config), "--json")
    assert again.code == 1
    taken = {e["name"]: e["skipped"] for e in again.json()}
    assert "already registered" in taken["Time"] and "--force" in taken["Time"]


def test_vscode_mcp_json(home: Path, work: Path, time_server: str):
    vscode = work / ".vscode"
    vscode.mkdir()
    config = vscode / "mcp.json"
    config.write_text(json.dumps({
        "inputs": [{"type": "promptString", "id": "key", "description": "API key", "password": True}],
        "servers": {
            "clock": {"type": "stdio", "command": time_server, "cwd": "${workspaceFolder}"},
            "asks": {"type": "stdio", "command": time_server, "env": {"KEY": "${input:key}"}},
            "web": {"type": "http", "url": "https://mcp.example.com/mcp"},
        }}))
    r = gz(home, "provider", "add", str(config), "--json")
    assert r.code == 0, r.err
    entries = {e["name"]: e for e in r.json()}
    assert entries["clock"]["skipped"] is None and entries["clock"]["protocols"] == ["clock/v1"]
    assert "${input:key} asks for interactive input" in entries["asks"]["skipped"]
    assert entries["web"]["skipped"] == "http servers are not supported; only stdio servers (with a 'command') are"
    assert f"cwd: {work}" in (home / "providers" / "clock.yaml").read_text()
    r, report = run(home, work, one_task("clock/get_current_time", {"timezone": "Asia/Tokyo"}))
    assert r.code == 0, r.err
    assert report["tasks"]["Task"]["result"]["timezone"] == "Asia/Tokyo"


def test_a_bad_mcp_manifest_is_one_line(home: Path, work: Path, time_server: str):
    bad = work / "Clock.yaml"
    bad.write_text(f"name: Clock\nkind: mcp\ncommand: {time_server}\n")
    r = gz(home, "provider", "add", str(bad))
    assert r.code == 2
    assert r.err.strip().splitlines() == [
        f"error: {bad}: an MCP provider's name becomes its methods' prefix (Clock/<tool>): use lower-case "
        "letters, digits, '-' and '_', starting with a letter"]
    bad.write_text(f"name: clock\nkind: mcpp\ncommand: {time_server}\n")
    r = gz(home, "provider", "add", str(bad))
    assert r.code == 2 and r.err.strip() == f"error: {bad}:2:7: kind: 'mcpp' is not one of ['gleitzeit', 'mcp']"


def test_provider_check_points_an_mcp_manifest_elsewhere(home: Path, work: Path, time_server: str):
    manifest = work / "clock.yaml"
    manifest.write_text(f"name: clock\nkind: mcp\ncommand: {time_server}\n")
    r = gz(home, "provider", "check", str(manifest))
    assert r.code == 2 and r.err.strip() == (
        f"error: {manifest}: provider check tests the Gleitzeit provider protocol, and 'clock' is an MCP server "
        "(kind: mcp); register it with `provider add` and try `provider health clock`")
