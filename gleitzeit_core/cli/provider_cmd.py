"""`gleitzeit provider …`: registered providers — list, health, add, remove, conformance check."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

import typer
import yaml
from rich.text import Text

from gleitzeit_core._api import providers as api
from gleitzeit_core.cli.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliState, JsonOpt, fail, run_async, state
from gleitzeit_core.cli.common import STATE_STYLE, probes_table
from gleitzeit_core.dispatch.probe import manifests
from gleitzeit_core.cli.render import emit, print_json
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.providers.manifest import (ManifestError, ProviderKind, ProviderManifest, load_manifest,
                                               parse_manifest)
from gleitzeit_core.providers.mcp.client_config import is_client_config, read_client_config

app = typer.Typer(help="Providers: list, check health, register (add/remove), test conformance.", no_args_is_help=True)

@app.command("list")
def list_providers(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List built-in and registered providers; each is started briefly to list its methods.

    Example: gleitzeit provider list --json
    """
    st = state(ctx, json=json_out)

    listing = run_async(lambda: api.providers(config=st.config()))
    probes, problems = listing.probes, listing.invalid
    emit(st.json, [p.to_json() for p in probes] + [{"name": None, "state": "invalid", "error": line} for line in problems],
         lambda: st.console.print(probes_table(probes, problems)))


@app.command("health")
def health(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME", help="Provider name (see `provider list`)."),
           json_out: JsonOpt = False) -> None:
    """Start a provider and report handshake, ping latency, methods and its `health` answer (exit 1 if unhealthy).

    Example: gleitzeit provider health python
    """
    st = state(ctx, json=json_out)

    p = run_async(lambda: api.provider_health(name, config=st.config()))

    def human() -> None:
        style = STATE_STYLE.get(p.state, "")
        st.console.print(Text.assemble((f"{p.name} {p.version}".strip(), "bold"), "  ", (p.state, style),
                                       f"  ({p.error})" if p.error else ""))
        st.console.print(f"manifest   {p.source}")
        if p.ping_ms is not None:
            st.console.print(f"pid        {p.pid}\nping       {p.ping_ms:.1f} ms\nmethods    {', '.join(p.methods)}")
        for key, value in (p.health or {}).items():
            shown = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
            st.console.print(f"{key:<10} {shown}", soft_wrap=True, markup=False)

    emit(st.json, p.to_json(), human)
    raise typer.Exit(EXIT_OK if p.state == "ok" else EXIT_FAILED)


def portable(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """The manifest with paths relative to its folder made absolute, so the copy still works."""
    out = dict(data)
    cmd = str(out["command"])
    if cmd != "{python}" and not os.path.isabs(cmd) and (os.sep in cmd or (base / cmd).is_file()):
        out["command"] = str((base / cmd).resolve())
    out["args"] = [str((base / a).resolve()) if not os.path.isabs(a) and not a.startswith("-") and (base / a).exists()
                   else a for a in out.get("args") or []]
    if out.get("cwd") is not None:
        out["cwd"] = str((base / str(out["cwd"])).resolve())
    return out


def user_manifest(directory: Path, name: str) -> Path | None:
    for path in sorted(directory.glob("*.y*ml")):
        try:
            if load_manifest(path).name == name:
                return path
        except ManifestError:
            continue
    return None


class AlreadyRegistered(ManifestError):
    """Another provider of that name is registered (and no --force)."""


@dataclass
class Added:
    """What `provider add` did with one manifest, or with one server of an MCP client config."""

    name: str
    manifest: str | None = None  # the registered file
    protocols: list[str] = field(default_factory=list)
    version: str = ""
    skipped: str | None = None  # why not registered
    unsupported: bool = False  # a transport we do not speak: reported, not an error

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "protocols": self.protocols, "manifest": self.manifest}


def register(directory: Path, data: dict[str, Any], source: Path, force: bool, origin: str) -> Added:
    """Validate manifest data, check its command, copy it into ``directory``. Raises ManifestError,
    AlreadyRegistered when the name is taken and not ``force``."""
    m = parse_manifest(data, str(source))
    m.argv()  # the command must exist now, not at the first run
    existing = user_manifest(directory, m.name) if directory.is_dir() else None
    if existing and not force:
        raise AlreadyRegistered(f"a provider named {m.name!r} is already registered ({existing}); use --force to replace it")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{m.name}.yaml"
    if existing and existing != target:
        existing.unlink()
    target.write_text(f"# registered from {origin}\n"
                      + yaml.safe_dump(portable(data, source.resolve().parent), sort_keys=False), encoding="utf-8")
    return Added(m.name, str(target), list(m.protocols), m.version)


async def handshake_protocols(config: Any, m: ProviderManifest) -> list[str]:
    """Start the provider once and return the protocols its ``initialize`` declares; fails
    (exit 1) if it cannot start or disagrees with the manifest's own ``protocols``."""
    from gleitzeit_core.dispatch.local import provider_config
    from gleitzeit_core.providers.actor import served_protocols
    from gleitzeit_core.providers.host import ProviderHost

    async with ProviderHost([m], config=provider_config(config)) as host:
        try:
            await host.actor(m.name).ensure_started()
        except ProviderError as exc:
            fail(f"{m.source}: {exc.message}")
        return served_protocols(host.actor(m.name).info)


@app.command("add")
def add(ctx: typer.Context,
        manifest: str = typer.Argument(..., metavar="FILE",
                                       help="A provider manifest (YAML), or an MCP client config: Claude Desktop / "
                                            ".mcp.json ({\"mcpServers\": …}) or VS Code mcp.json ({\"servers\": …})."),
        force: bool = typer.Option(False, "--force", help="Replace a registered provider of the same name."),
        json_out: JsonOpt = False) -> None:
    """Validate a provider manifest, start it once to learn the protocols it serves, and
    register it (copied into providers.directory, with those protocols).

    An MCP client config registers each of its stdio servers as a `kind: mcp` provider
    (see docs/mcp.md); other servers are reported, one line each.

    Example: gleitzeit provider add examples/providers/node/manifest.yaml

    Example: gleitzeit provider add ~/.config/Claude/claude_desktop_config.json
    """
    st = state(ctx, json=json_out)
    path = Path(manifest)

    async def go() -> tuple[bool, list[Added]]:
        config = st.config()
        directory = Path(config["providers.directory"]).expanduser()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            data = None  # load_manifest says what is wrong, with the position
        if not is_client_config(data):
            m = load_manifest(path)  # raises ManifestError (exit 2) naming file, line and key
            if m.kind is ProviderKind.GLEITZEIT:
                m.argv()  # the command must exist before it is started
                data = data | {"protocols": await handshake_protocols(config, m)}
            try:
                return False, [register(directory, data, path, force, str(path.resolve()))]
            except AlreadyRegistered as exc:  # exit 1; a missing command stays a ManifestError (exit 2)
                fail(str(exc))
        added = []
        for server in read_client_config(data, path):
            if server.manifest is None:
                added.append(Added(server.key, skipped=server.unsupported, unsupported=True))
                continue
            try:
                added.append(register(directory, server.manifest, path, force, f"{path.resolve()} ({server.key!r})"))
            except ManifestError as exc:
                added.append(Added(server.key, skipped=str(exc)))
        return True, added

    from_config, added = run_async(go)

    def human() -> None:
        for a in added:
            if a.skipped is None:
                st.console.print(f"registered provider {a.name!r} ({', '.join(a.protocols)}) as {a.manifest}",
                                 soft_wrap=True, markup=False)
            else:
                st.console.print(f"skipped {a.name!r}: {a.skipped}", soft_wrap=True, markup=False)

    emit(st.json, [{**a.to_json(), "skipped": a.skipped} for a in added] if from_config else added[0].to_json(), human)
    # Unsupported transports are reported, not failures; a server that should work and does not is one.
    if any(a.skipped is not None and not a.unsupported for a in added) or not any(a.skipped is None for a in added):
        raise typer.Exit(EXIT_FAILED)


@app.command("remove")
def remove(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME", help="Name of a registered provider."),
           json_out: JsonOpt = False) -> None:
    """Unregister a provider added with `provider add`.

    Example: gleitzeit provider remove text
    """
    st = state(ctx, json=json_out)

    async def go() -> Path:
        config = st.config()
        directory = Path(config["providers.directory"]).expanduser()
        path = user_manifest(directory, name) if directory.is_dir() else None
        if path is None:
            builtin = any(m.name == name for m in manifests(config)[0])
            fail(f"provider {name!r} is built in; disable it with `gleitzeit config set providers.{name}.enabled false`"
                 if builtin else f"no registered provider named {name!r} in {directory}")
        path.unlink()
        return path

    path = run_async(go)
    emit(st.json, {"name": name, "removed": str(path)}, lambda: st.console.print(f"removed {name!r} ({path})"))


@app.command("check")
def check(
    ctx: typer.Context,
    target: List[str] = typer.Argument(..., metavar="MANIFEST | -- COMMAND [ARGS]...",
                                       help="A manifest file, or the provider's command line after --."),
    case: Optional[List[str]] = typer.Option(None, "--case", help="Run only this case (repeatable)."),
    json_out: JsonOpt = False,
) -> None:
    """Run the protocol conformance suite against a provider (exit 1 if any case fails).

    Example: gleitzeit provider check examples/providers/node/manifest.yaml

    Example: gleitzeit provider check -- node examples/providers/node/provider.js
    """
    st = state(ctx, json=json_out)
    from gleitzeit_sdk.conformance import exit_code, render_results, run_checks

    argv, env, cwd, samples = command_of(st, target)
    try:
        results = run_checks(argv, env=env, cwd=cwd, samples=samples, only=tuple(case) if case else None)
    except ValueError as exc:  # unknown case name or bad samples
        fail(str(exc), EXIT_USAGE)
    failed = exit_code(results) != 0
    if st.json:
        print_json({"provider": " ".join(argv), "passed": not failed,
                    "results": [{"name": r.name, "status": r.status, "detail": r.detail, "seconds": round(r.seconds, 3)}
                                for r in results]})
    else:
        render_results(results, st.console, title=f"conformance · {' '.join(argv)}")
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def command_of(st: CliState, target: list[str]) -> tuple[list[str], dict[str, str] | None, str | None, Any]:
    """argv, env, cwd and sample calls: from a manifest, or a bare command line."""
    from gleitzeit_core.providers.process import inherited_env

    if len(target) == 1 and target[0].endswith((".yaml", ".yml")):
        async def go() -> ProviderManifest:
            return load_manifest(target[0])
        m = run_async(go)
        if m.kind is ProviderKind.MCP:
            fail(f"{target[0]}: provider check tests the Gleitzeit provider protocol, and {m.name!r} is an MCP "
                 f"server (kind: mcp); register it with `provider add` and try `provider health {m.name}`",
                 EXIT_USAGE)
        try:
            argv = m.argv()
        except ManifestError as exc:
            fail(str(exc), EXIT_USAGE)
        return argv, inherited_env(m.inherit_env, m.env), m.workdir(), m.conformance or None
    return list(target), None, None, None
