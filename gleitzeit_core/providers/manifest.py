"""Provider manifests: how to start a provider, read from YAML.

Built-in providers ship a ``manifest.yaml`` in their package and go through the
same code path as third-party ones.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gleitzeit_core.errors import ConfigError

BUILTIN_PACKAGES = ("provider_python", "provider_ollama")

_KEYS = {
    "name", "version", "command", "args", "env", "inherit_env", "cwd", "max_in_flight",
    "startup_timeout", "restart", "protocols", "description", "conformance", "config", "kind",
}
_RESTART_KEYS = {"max_restarts", "window"}
#: What an MCP server inherits when its manifest names no inherit_env: the MCP SDKs' default
#: list plus the locale (``npx`` needs HOME for its cache, ``#!/usr/bin/env node`` needs PATH).
MCP_INHERIT_ENV = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL")
#: A method is ``<name>/<tool>``, so an MCP provider's name must be a valid protocol prefix.
_PROTOCOL_NAME = re.compile(r"[a-z][a-z0-9_-]*")


class ProviderKind(enum.Enum):
    """What the executable speaks on stdio: Gleitzeit protocol v1, or MCP (docs/mcp.md)."""

    GLEITZEIT = "gleitzeit"
    MCP = "mcp"


class ManifestError(ConfigError):
    pass


@dataclass(frozen=True)
class RestartPolicy:
    """At most ``max_restarts`` crashes within ``window`` seconds (VS Code's 5 in 180 s)."""

    max_restarts: int = 5
    window: float = 180.0


@dataclass(frozen=True)
class ProviderManifest:
    name: str
    command: str
    args: tuple[str, ...] = ()
    kind: ProviderKind = ProviderKind.GLEITZEIT
    version: str = ""
    env: dict[str, str] = field(default_factory=dict)
    inherit_env: tuple[str, ...] = ("PATH",)
    cwd: str | None = None
    max_in_flight: int | None = None  # None: what the provider says at handshake
    startup_timeout: float = 10.0
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    protocols: tuple[str, ...] = ()
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    conformance: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the manifest file

    def argv(self) -> list[str]:
        """Command line with ``{python}`` → this interpreter, relative args → manifest folder."""
        base = Path(self.source).parent if self.source else Path.cwd()
        cmd = sys.executable if self.command == "{python}" else self.command
        resolved = shutil.which(cmd) if os.sep not in cmd else cmd
        if resolved is None and not os.path.isabs(cmd) and (base / cmd).exists():
            resolved = str(base / cmd)
        if resolved is None or not os.path.exists(resolved):
            raise ManifestError(f"{self.source}: provider {self.name!r}: command {cmd!r} not found on PATH")
        if not os.access(resolved, os.X_OK):
            raise ManifestError(f"{self.source}: provider {self.name!r}: command {resolved!r} is not executable")
        args = []
        for a in self.args:
            a = a.replace("{python}", sys.executable)
            candidate = base / a
            args.append(str(candidate) if not os.path.isabs(a) and not a.startswith("-") and candidate.exists() else a)
        return [resolved, *args]

    def workdir(self) -> str | None:
        if self.cwd is None:
            return None
        base = Path(self.source).parent if self.source else Path.cwd()
        return str((base / self.cwd).resolve())


def _expect(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ManifestError(f"{where}: {msg}")


def _str_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    _expect(isinstance(value, list) and all(isinstance(v, str) for v in value), where, f"{key} must be a list of strings")
    return tuple(value)


def parse_manifest(data: Any, source: str) -> ProviderManifest:
    where = source
    _expect(isinstance(data, dict), where, "a manifest must be a YAML mapping")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], _KEYS, n=1)
        _expect(False, where, f"unknown key {unknown[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    for key in ("name", "command"):
        _expect(isinstance(data.get(key), str) and data[key].strip() != "", where, f"{key!r} is required and must be a non-empty string")
    env = data.get("env") or {}
    _expect(isinstance(env, dict) and all(isinstance(k, str) for k in env), where, "env must be a mapping of names to values")
    restart = data.get("restart") or {}
    _expect(isinstance(restart, dict), where, "restart must be a mapping")
    bad = sorted(set(restart) - _RESTART_KEYS)
    _expect(not bad, where, f"unknown key restart.{bad[0] if bad else ''}")
    mif = data.get("max_in_flight")
    _expect(mif is None or (isinstance(mif, int) and not isinstance(mif, bool) and mif >= 1), where, "max_in_flight must be an integer ≥ 1")
    st = data.get("startup_timeout", 10.0)
    _expect(isinstance(st, (int, float)) and not isinstance(st, bool) and st > 0, where, "startup_timeout must be a positive number")
    for key in ("config", "conformance"):
        _expect(isinstance(data.get(key) or {}, dict), where, f"{key} must be a mapping")
    kinds = [k.value for k in ProviderKind]
    _expect(data.get("kind", "gleitzeit") in kinds, where, f"kind must be one of {', '.join(kinds)}")
    kind = ProviderKind(data.get("kind", "gleitzeit"))
    protocols = _str_list(data.get("protocols") or [], where, "protocols")
    inherit = data.get("inherit_env", ["PATH"])
    if kind is ProviderKind.MCP:
        # Its methods are <name>/<tool>: the protocol follows from the name.
        _expect(bool(_PROTOCOL_NAME.fullmatch(data["name"])), where,
                f"an MCP provider's name becomes its methods' prefix ({data['name']}/<tool>): "
                "use lower-case letters, digits, '-' and '_', starting with a letter")
        _expect(protocols in ((), (f"{data['name']}/v1",)), where,
                f"an MCP provider serves protocol {data['name']}/v1; drop 'protocols'")
        protocols = (f"{data['name']}/v1",)
        inherit = data.get("inherit_env", list(MCP_INHERIT_ENV))
        mif = 1 if mif is None else mif  # MCP announces no concurrency: one call at a time unless raised
    return ProviderManifest(
        name=data["name"],
        command=data["command"],
        args=_str_list(data.get("args") or [], where, "args"),
        kind=kind,
        version=str(data.get("version") or ""),
        env={k: str(v) for k, v in env.items()},
        inherit_env=_str_list(inherit or [], where, "inherit_env"),
        cwd=data.get("cwd"),
        max_in_flight=mif,
        startup_timeout=float(st),
        restart=RestartPolicy(
            max_restarts=int(restart.get("max_restarts", 5)), window=float(restart.get("window", 180.0))
        ),
        protocols=protocols,
        description=str(data.get("description") or ""),
        config=dict(data.get("config") or {}),
        conformance=dict(data.get("conformance") or {}),
        source=str(Path(source).resolve()) if source and not source.startswith("<") else source,
    )


def load_manifest(path: str | os.PathLike[str]) -> ProviderManifest:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{p}: cannot read manifest: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        raise ManifestError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_manifest(data, str(p))


def builtin_manifest_paths() -> list[Path]:
    """Manifests shipped inside the built-in provider packages that are installed."""
    import importlib.util

    paths = []
    for pkg in BUILTIN_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec is not None and spec.submodule_search_locations:
            candidate = Path(next(iter(spec.submodule_search_locations))) / "manifest.yaml"
            if candidate.exists():
                paths.append(candidate)
    return paths
