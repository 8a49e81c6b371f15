"""`gleitzeit provider …`: registered providers — list, health, add, remove, conformance check."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List, Optional

import typer
import yaml
from rich.table import Table
from rich.text import Text

from gleitzeit_core.cli.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliState, JsonOpt, fail, not_found, run_async, state
from gleitzeit_core.cli.probe import Probe, manifests, probe_all
from gleitzeit_core.cli.render import emit, print_json
from gleitzeit_core.providers.manifest import ManifestError, ProviderManifest, load_manifest

app = typer.Typer(help="Providers: list, check health, register (add/remove), test conformance.", no_args_is_help=True)

STATE_STYLE = {"ok": "green", "unhealthy": "red", "error": "red", "disabled": "dim"}


def probes_table(probes: list[Probe], problems: list[str]) -> Table:
    """One row per provider; manifest paths are in --json and `provider health`."""
    table = Table()
    table.add_column("provider", no_wrap=True)
    table.add_column("protocols")
    table.add_column("state", no_wrap=True)
    table.add_column("methods / problem", overflow="fold")
    for p in probes:
        detail = ", ".join(p.methods) if p.state in ("ok", "unhealthy") and not p.error else (p.error or "")
        table.add_row(f"{p.name} {p.version}".strip(), ", ".join(p.protocols),
                      Text(p.state, style=STATE_STYLE.get(p.state, "")), detail)
    for line in problems:
        table.add_row("?", "", Text("invalid", style="red"), line)
    return table


@app.command("list")
def list_providers(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List built-in and registered providers; each is started briefly to list its methods.

    Example: gleitzeit provider list --json
    """
    st = state(ctx, json=json_out)

    async def go() -> tuple[list[Probe], list[str]]:
        config = st.config()
        found, problems = manifests(config)
        return await probe_all(config, found, health=False), problems

    probes, problems = run_async(go)
    emit(st.json, [p.to_json() for p in probes] + [{"name": None, "state": "invalid", "error": line} for line in problems],
         lambda: st.console.print(probes_table(probes, problems)))


@app.command("health")
def health(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME", help="Provider name (see `provider list`)."),
           json_out: JsonOpt = False) -> None:
    """Start a provider and report handshake, ping latency, methods and its `health` answer (exit 1 if unhealthy).

    Example: gleitzeit provider health python
    """
    st = state(ctx, json=json_out)

    async def go() -> Probe:
        config = st.config()
        found, _ = manifests(config)
        chosen = [m for m in found if m.name == name]
        if not chosen:
            not_found(f"no provider named {name!r} (known: {', '.join(sorted(m.name for m in found)) or 'none'})")
        return (await probe_all(config, chosen, health=True))[0]

    p = run_async(go)

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


@app.command("add")
def add(ctx: typer.Context, manifest: str = typer.Argument(..., metavar="MANIFEST", help="A provider manifest (YAML)."),
        force: bool = typer.Option(False, "--force", help="Replace a registered provider of the same name."),
        json_out: JsonOpt = False) -> None:
    """Validate a provider manifest and register it (copied into providers.directory).

    Example: gleitzeit provider add examples/providers/node/manifest.yaml
    """
    st = state(ctx, json=json_out)

    async def go() -> tuple[ProviderManifest, Path]:
        config = st.config()
        m = load_manifest(manifest)  # raises ManifestError (exit 2) naming file and key
        m.argv()  # the command must exist now, not at the first run
        directory = Path(config["providers.directory"]).expanduser()
        existing = user_manifest(directory, m.name) if directory.is_dir() else None
        if existing and not force:
            fail(f"a provider named {m.name!r} is already registered ({existing}); use --force to replace it")
        raw = yaml.safe_load(Path(manifest).read_text(encoding="utf-8"))
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"{m.name}.yaml"
        if existing and existing != target:
            existing.unlink()
        target.write_text(f"# registered from {Path(manifest).resolve()}\n"
                          + yaml.safe_dump(portable(raw, Path(manifest).resolve().parent), sort_keys=False),
                          encoding="utf-8")
        return m, target

    m, target = run_async(go)
    emit(st.json, {"name": m.name, "version": m.version, "protocols": list(m.protocols), "manifest": str(target)},
         lambda: st.console.print(f"registered provider {m.name!r} ({', '.join(m.protocols)}) as {target}"))


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
    from gleitzeit_sdk.conformance import render_results, run_checks

    argv, env, cwd, samples = command_of(st, target)
    try:
        results = run_checks(argv, env=env, cwd=cwd, samples=samples, only=tuple(case) if case else None)
    except ValueError as exc:  # unknown case name or bad samples
        fail(str(exc), EXIT_USAGE)
    failed = any(r.status == "fail" for r in results)
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
        try:
            argv = m.argv()
        except ManifestError as exc:
            fail(str(exc), EXIT_USAGE)
        return argv, inherited_env(m.inherit_env, m.env), m.workdir(), m.conformance or None
    return list(target), None, None, None
