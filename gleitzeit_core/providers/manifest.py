"""Provider manifests: how to start a provider, read from YAML.

Built-in providers ship a ``manifest.yaml`` in their package (found through their
``gleitzeit.providers`` declaration, ``providers/declared.py``) and go through the
same code path as third-party ones.
"""

from __future__ import annotations

import difflib
import enum
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gleitzeit_core.errors import ConfigError
from gleitzeit_core.workflow.source import Marks, parse
from gleitzeit_sdk.schemas import SCHEMA_DIR

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

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


#: The manifest's JSON Schema (sdk/schema/manifest.json): every key, its type and its default.
MANIFEST_SCHEMA = json.loads((SCHEMA_DIR / "manifest.json").read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    """Built on first use: importing the host (this module) does not load jsonschema (~0.3 s)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(MANIFEST_SCHEMA)


def manifest_problems(data: Any, source: str, marks: Marks | None = None) -> list[str]:
    """One ``file:line:col: message`` line per violation of the manifest schema."""
    if not isinstance(data, dict):
        return [f"{source}: a manifest must be a mapping of keys to values"]
    problems = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        container, key = _locate(data, path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set((error.schema.get("properties") or {}))
            for name in sorted(set(error.instance) - allowed, key=str):
                hint = difflib.get_close_matches(str(name), sorted(allowed), n=1)
                where = marks.key(error.instance, name) if marks else source
                label = ".".join(map(str, path + [name]))
                problems.append(f"{where}: unknown key {label!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            continue
        where = (marks.value(container, key) if key is not None else marks.of(data)) if marks else source
        label = ".".join(map(str, path))
        problems.append(f"{where}: " + (f"{label}: " if label else "") + error.message)
    return problems


def _locate(data: Any, path: list[Any]) -> tuple[Any, Any]:
    """The container holding the value at ``path`` and its key (None for the root)."""
    container: Any = data
    for step in path[:-1]:
        container = container[step]
    return (container, path[-1]) if path else (data, None)


def parse_manifest(data: Any, source: str, marks: Marks | None = None) -> ProviderManifest:
    """A validated manifest; raises ManifestError with one line per problem."""
    problems = manifest_problems(data, source, marks)
    if problems:
        raise ManifestError("\n".join(problems))
    restart = data.get("restart") or {}
    kind = ProviderKind(data.get("kind", "gleitzeit"))
    protocols = tuple(data.get("protocols") or ())
    inherit = data.get("inherit_env", ["PATH"])
    mif = data.get("max_in_flight")
    if kind is ProviderKind.MCP:
        # Its methods are <name>/<tool>: the protocol follows from the name.
        if not _PROTOCOL_NAME.fullmatch(data["name"]):
            raise ManifestError(f"{source}: an MCP provider's name becomes its methods' prefix ({data['name']}/<tool>): "
                                "use lower-case letters, digits, '-' and '_', starting with a letter")
        if protocols not in ((), (f"{data['name']}/v1",)):
            raise ManifestError(f"{source}: an MCP provider serves protocol {data['name']}/v1; drop 'protocols'")
        protocols = (f"{data['name']}/v1",)
        inherit = data.get("inherit_env", list(MCP_INHERIT_ENV))
        mif = 1 if mif is None else mif  # MCP announces no concurrency: one call at a time unless raised
    return ProviderManifest(
        name=data["name"],
        command=data["command"],
        args=tuple(data.get("args") or ()),
        kind=kind,
        version=str(data.get("version") or ""),
        env={k: str(v) for k, v in (data.get("env") or {}).items()},
        inherit_env=tuple(inherit or ()),
        cwd=data.get("cwd"),
        max_in_flight=mif,
        startup_timeout=float(data.get("startup_timeout", 10.0)),
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
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}: cannot read manifest: {getattr(exc, 'strerror', None) or exc}") from None
    data, marks, problems = parse(text, str(p), "json" if p.suffix == ".json" else "yaml")
    if problems:
        raise ManifestError("\n".join(str(problem) for problem in problems))
    return parse_manifest(data, str(p), marks)
