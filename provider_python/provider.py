"""The `python/execute` method: resolve what to run and where, run it in the sandbox, and map the
outcome onto the protocol (result object, or TaskFailed with the user's traceback only)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gleitzeit_sdk import Provider, RequestContext, TaskFailed, codes

from provider_python.sandbox import workspace
from provider_python.sandbox.host import Sandbox
from provider_python.sandbox.policy import (
    DEFAULT_DISK_MB, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, MiB, ExecRequest, ExecResult, SandboxPolicy,
)

NAME, VERSION = "python", "0.5.0"
MAX_IN_FLIGHT = 4
# The response may travel in pieces (PROTOCOL.md §1.1) up to the host's assembled limit; leave
# room in it for two capped (JSON-escaped) output streams and framing.
MESSAGE_LIMIT = codes.DEFAULT_MAX_ASSEMBLED_BYTES
MAX_RESULT_BYTES = MESSAGE_LIMIT - 2 * 2 * MiB - 64 * 1024

_PATHS = {"type": "array", "items": {"type": "string", "minLength": 1}}
SANDBOX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Opt-ins that widen the sandbox for this task; nothing else can.",
    "properties": {
        "network": {"type": "boolean", "description": "Allow network access (default false)."},
        "read": {**_PATHS, "description": "Extra host paths visible read-only."},
        "write": {**_PATHS, "description": "Extra host paths visible read-write."},
        "memory_mb": {"type": "integer", "minimum": 32, "maximum": 1 << 20,
                      "description": f"Address-space limit in MiB (default {DEFAULT_MEMORY_MB})."},
        "disk_mb": {"type": "integer", "minimum": 1, "maximum": 1 << 20,
                    "description": "Most the task may change in its workspace, in MiB (default: the runner's "
                                   f"sandbox.max_disk_mb, {DEFAULT_DISK_MB} unless set)."},
        "env": {"type": "object", "additionalProperties": {"type": "string"},
                "description": "Environment variables for the code (default: none beyond PATH/LANG/HOME/TMPDIR)."},
    },
    "additionalProperties": False,
}
PARAMS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "Python source to run; the value of `result` is returned."},
        "file": {"type": "string", "minLength": 1,
                 "description": "Python script, resolved against the workflow folder (or base_dir), then the "
                                "provider's working directory."},
        "base_dir": {"type": "string", "minLength": 1, "description": "Folder to resolve `file` against."},
        "context": {"type": "object", "description": "Visible to the code as the global `context`."},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400,
                    "description": "The task's timeout under another name (the host keeps the two equal); "
                                   f"seconds before the sandbox is killed (default {DEFAULT_TIMEOUT:g})."},
        "sandbox": SANDBOX_SCHEMA,
    },
    "oneOf": [{"required": ["code"]}, {"required": ["file"]}],
    "additionalProperties": False,
}
RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "result": {"description": "The value of the global `result` after the code ran (JSON), or null."},
        "stdout": {"type": "string"},
        "stderr": {"type": "string"},
        "duration_ms": {"type": "number"},
    },
    "required": ["result", "stdout", "stderr", "duration_ms"],
    "additionalProperties": False,
}


@dataclass
class Settings:
    """The provider's `sandbox` config section (from the host's initialize `config`)."""

    require: str = "best"
    mode: str = "auto"
    state_dir: Path = field(default_factory=lambda: Path.home() / ".gleitzeit" / "python-provider")
    workspace_retention_days: float = workspace.DEFAULT_RETENTION_DAYS
    python: str = sys.executable  # the interpreter (and so the environment) task code runs in
    hidden: tuple[str, ...] = ()  # the engine's private paths (store, workspaces): never visible to a task
    max_disk_mb: int = DEFAULT_DISK_MB  # the runner's workspace quota: a task's default and its cap (0: none)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Settings":
        sec = config.get("sandbox") or {}
        if not isinstance(sec, dict):
            raise ValueError("config.sandbox must be a mapping")
        s = cls()
        if sec.get("require", "best") not in ("best", "strict"):
            raise ValueError(f"config.sandbox.require must be 'best' or 'strict', not {sec.get('require')!r}")
        if sec.get("mode", "auto") not in ("auto", "forkserver", "fresh"):
            raise ValueError(f"config.sandbox.mode must be auto, forkserver or fresh, not {sec.get('mode')!r}")
        s.require, s.mode = sec.get("require", "best"), sec.get("mode", "auto")
        if sec.get("state_dir"):
            s.state_dir = Path(os.path.expanduser(str(sec["state_dir"])))
        if sec.get("python"):
            s.python = os.path.abspath(os.path.expanduser(str(sec["python"])))
        if sec.get("hidden"):
            s.hidden = tuple(os.path.abspath(os.path.expanduser(str(p))) for p in sec["hidden"])
        if sec.get("max_disk_mb") is not None:
            s.max_disk_mb = int(sec["max_disk_mb"])
            if s.max_disk_mb < 0:
                raise ValueError("config.sandbox.max_disk_mb must be a number of MiB (0: no quota)")
        if sec.get("workspace_retention_days") is not None:
            s.workspace_retention_days = float(sec["workspace_retention_days"])
        return s


@dataclass
class _State:
    """What the lifespan owns; handlers reach it through ctx.state, health through the closure."""

    sandbox: Sandbox | None = None
    settings: Settings = field(default_factory=Settings)


def create_provider() -> Provider:
    provider = Provider(name=NAME, version=VERSION, max_in_flight=MAX_IN_FLIGHT)
    state = _State()

    @provider.lifespan
    async def lifespan(config: dict[str, Any]) -> AsyncIterator[_State]:
        state.settings = Settings.from_config(config)
        workspace.sweep(state.settings.state_dir / "workspaces", state.settings.workspace_retention_days)
        async with Sandbox(state_dir=state.settings.state_dir, mode=state.settings.mode,  # type: ignore[arg-type]
                           require=state.settings.require, python=state.settings.python,
                           idle_slots=MAX_IN_FLIGHT) as sandbox:  # type: ignore[arg-type]
            state.sandbox = sandbox
            try:
                yield state
            finally:
                state.sandbox = None

    @provider.health_check
    async def health() -> dict[str, Any]:
        return {"sandbox": state.sandbox.isolation() if state.sandbox else None}

    @provider.method("python/execute", params_schema=PARAMS_SCHEMA, result_schema=RESULT_SCHEMA,
                     code_params={"code": "python"}, idempotent=False, default_timeout=DEFAULT_TIMEOUT,
                     timeout_param="timeout", file_params=("file",), cacheable="task")
    async def execute(ctx: RequestContext, code: str | None = None, file: str | None = None,
                      base_dir: str | None = None, context: dict[str, Any] | None = None,
                      timeout: float | None = None, sandbox: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run Python code (inline `code` or a `file`) in an isolated child process and return the value
        of its `result` variable with its stdout/stderr."""
        if state.sandbox is None:
            raise TaskFailed("the Python sandbox is not running", type="SandboxUnavailable", retryable=True)
        req = build_request(ctx.meta, state.settings, code=code, file=file, base_dir=base_dir,
                            context=context, timeout=timeout, sandbox=sandbox)
        on_output = None
        if ctx.progress_token is not None:
            on_output = ctx.output
        res = await state.sandbox.run(req, on_output)
        return to_response(res)

    return provider


def build_request(meta: dict[str, Any], settings: Settings, *, code: str | None, file: str | None,
                  base_dir: str | None, context: dict[str, Any] | None, timeout: float | None,
                  sandbox: dict[str, Any] | None) -> ExecRequest:
    """Turn wire params and `_meta` into an ExecRequest: resolve the file, pick the workspace.
    Layout: the working directory is the run's workspace; the workflow folder is visible
    read-only at its own path and through links in the workspace (see workspace.link_inputs)."""
    folder = meta.get("workflowDir") or base_dir
    if folder and os.path.abspath(folder) == "/":
        raise TaskFailed("the workflow folder is / (the whole host): move the workflow into a folder of its own",
                         type="PermissionError", retryable=False)
    read_only: tuple[str, ...] = (os.path.abspath(folder),) if folder else ()
    path = None
    if file is not None:
        path = resolve_file(file, folder)
        if not read_only:
            read_only = (path,)  # no workflow folder (`gleitzeit exec --file`): the script alone
    ws = meta.get("workspace") or str(workspace.for_run(settings.state_dir / "workspaces", meta.get("runId")))
    opts = sandbox or {}
    disk_mb = int(opts.get("disk_mb", settings.max_disk_mb))
    if settings.max_disk_mb and disk_mb > settings.max_disk_mb:  # the loader refuses this first; a direct caller meets it here
        raise TaskFailed(f"sandbox.disk_mb {disk_mb} is above the runner's sandbox.max_disk_mb {settings.max_disk_mb}",
                         type="PermissionError", retryable=False)
    limits = {"memory_mb": int(opts["memory_mb"])} if "memory_mb" in opts else {}  # else the policy's default
    policy = SandboxPolicy(network=bool(opts.get("network", False)),
                           read=opt_in_paths(opts, "read", folder, settings.hidden),
                           write=opt_in_paths(opts, "write", folder, settings.hidden),
                           disk_mb=disk_mb, env=dict(opts.get("env", {})), **limits)
    return ExecRequest(code=code, file=path, context=context or {}, timeout=float(timeout or DEFAULT_TIMEOUT),
                       workspace=ws, read_only=read_only, policy=policy, max_result_bytes=MAX_RESULT_BYTES,
                       inputs=os.path.abspath(folder) if folder else None, hidden=settings.hidden)


def opt_in_paths(opts: dict[str, Any], key: str, folder: str | None, hidden: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`sandbox.read`/`sandbox.write` paths, absolute (relative ones are the workflow folder's);
    each must exist, or the task fails instead of silently seeing less than it asked for; none may
    lie in the engine's private state."""
    paths = []
    for raw in opts.get(key, ()):
        path = os.path.abspath(os.path.join(folder or os.getcwd(), os.path.expanduser(raw)))
        if not os.path.exists(path):
            raise TaskFailed(f"sandbox.{key} path does not exist: {raw}", type="FileNotFoundError", retryable=False)
        real = os.path.realpath(path)
        if any(real == h or real.startswith(h.rstrip(os.sep) + os.sep) for h in map(os.path.realpath, hidden)):
            raise TaskFailed(f"sandbox.{key} path is inside gleitzeit's private state (store, workspaces): {raw}",
                             type="PermissionError", retryable=False)
        paths.append(path)
    return tuple(paths)


def resolve_file(file: str, folder: str | None) -> str:
    """Absolute as given; relative: the workflow folder first, then the provider's working directory."""
    if os.path.isabs(file):
        candidates = [file]
    else:
        candidates = ([os.path.join(folder, file)] if folder else []) + [os.path.join(os.getcwd(), file)]
    for cand in candidates:
        if os.path.isfile(cand):
            return os.path.abspath(cand)
    raise TaskFailed(f"python file not found: {file} (looked in {', '.join(candidates)})",
                     type="FileNotFoundError", retryable=False)


def to_response(res: ExecResult) -> dict[str, Any]:
    """The result object, or TaskFailed carrying the user's traceback and the captured output."""
    if res.ok:
        return {"result": res.result, "stdout": res.stdout, "stderr": res.stderr, "duration_ms": res.duration_ms}
    details: dict[str, Any] = {"stdout": res.stdout, "stderr": res.stderr}
    if res.traceback:
        details["traceback"] = res.traceback
    raise TaskFailed(res.error_message or res.error_type or "failed", type=res.error_type or "Error",
                     retryable=res.retryable, details=details)
