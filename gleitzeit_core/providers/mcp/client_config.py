"""MCP client configuration files as ``kind: mcp`` manifests.

Reads the files people already have: Claude Desktop's
``claude_desktop_config.json`` and ``.mcp.json`` (``{"mcpServers": {...}}``,
also Cursor and Claude Code) and VS Code's ``mcp.json`` (``{"servers": {...}}``).
Each stdio server becomes manifest data; anything else (HTTP, SSE, interactive
``${input:…}`` values) is reported with the reason, one entry per server.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gleitzeit_core.providers.manifest import MCP_INHERIT_ENV

#: Top-level keys that hold the servers: Claude Desktop / .mcp.json, and VS Code.
SERVER_KEYS = ("mcpServers", "servers")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
#: An env value that only names a variable of the launching environment: passed through, never copied.
_PASS_THROUGH = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ImportedServer:
    """One entry of a client config: manifest data to register, or why it cannot be."""

    key: str  # the server's name in the file
    manifest: dict[str, Any] | None
    unsupported: str | None = None


def is_client_config(data: Any) -> bool:
    return isinstance(data, dict) and "command" not in data and any(
        isinstance(data.get(k), dict) for k in SERVER_KEYS)


def provider_name(key: str) -> str:
    """A server's key as a provider name (its methods' prefix): lower case, letters, digits, '-', '_'."""
    name = re.sub(r"[^a-z0-9_-]+", "-", key.strip().lower()).strip("-_")
    return re.sub(r"^[^a-z]+", "", name)


def read_client_config(data: dict[str, Any], path: Path) -> list[ImportedServer]:
    servers: dict[str, Any] = {}
    for key in SERVER_KEYS:
        if isinstance(data.get(key), dict):
            servers.update(data[key])
    folder = path.resolve().parent
    workspace = folder.parent if folder.name == ".vscode" else folder
    return [_server(key, entry, path, workspace) for key, entry in servers.items()]


def _server(key: str, entry: Any, path: Path, workspace: Path) -> ImportedServer:
    def skip(reason: str) -> ImportedServer:
        return ImportedServer(key, None, reason)

    if not isinstance(entry, dict):
        return skip("its entry is not an object")
    kind = entry.get("type", "stdio" if "command" in entry else None)
    if kind != "stdio" or "url" in entry:
        return skip(f"{kind or 'URL'} servers are not supported; only stdio servers (with a 'command') are")
    if not isinstance(entry.get("command"), str) or not entry["command"].strip():
        return skip("'command' must be a non-empty string")
    if "envFile" in entry:
        return skip("'envFile' is not supported; put the variables in 'env' or the environment gleitzeit runs in")
    name = provider_name(key)
    if not name:
        return skip("its name has no letters to make a provider name of")
    args = entry.get("args") or []
    env = entry.get("env") or {}
    if not isinstance(args, list) or not isinstance(env, dict):
        return skip("'args' must be a list and 'env' an object")
    passed: list[str] = []
    plain_env: dict[str, str] = {}
    for var, value in env.items():
        match = _PASS_THROUGH.fullmatch(str(value))
        if match and match.group(1) == var:
            passed.append(var)  # "${env:TOKEN}": the value stays in the environment, out of the manifest
        else:
            plain_env[str(var)] = str(value)
    try:
        command = _expand(entry["command"], workspace)
        expanded_args = [_expand(str(a), workspace) for a in args]
        expanded_env = {k: _expand(v, workspace) for k, v in plain_env.items()}
        cwd = _expand(str(entry["cwd"]), workspace) if entry.get("cwd") is not None else None
    except ValueError as exc:
        return skip(str(exc))
    manifest: dict[str, Any] = {"name": name, "kind": "mcp", "command": command, "args": expanded_args,
                                "description": f"MCP server {key!r} from {path}"}
    if expanded_env:
        manifest["env"] = expanded_env
    if passed:
        manifest["inherit_env"] = [*MCP_INHERIT_ENV, *(v for v in passed if v not in MCP_INHERIT_ENV)]
    if cwd is not None:
        manifest["cwd"] = cwd
    return ImportedServer(key, manifest)


def _expand(value: str, workspace: Path) -> str:
    """VS Code's ``${workspaceFolder}`` and ``${userHome}``; any other variable is refused."""
    def one(match: re.Match[str]) -> str:
        var = match.group(1)
        if var == "workspaceFolder":
            return str(workspace)
        if var == "userHome":
            return os.path.expanduser("~")
        if var.startswith("input:"):
            raise ValueError(f"${{{var}}} asks for interactive input, which an unattended run cannot give; "
                             "put the value in the environment and reference it as ${env:NAME} in 'env'")
        raise ValueError(f"${{{var}}} is not supported here (only ${{workspaceFolder}}, ${{userHome}}, "
                         "and ${env:NAME} as a whole 'env' value)")
    return _VARIABLE.sub(one, value)
