"""Plain data exchanged between the provider and the sandbox: what to run, under which rules, and
what came back. No behaviour here, so both the fork server and the async host can import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

MiB = 1 << 20
DEFAULT_DISK_MB = 1024  # the workspace quota when neither the workflow nor the runner says otherwise
DEFAULT_MEMORY_MB = 1024  # the address-space limit when the workflow sets no sandbox.memory_mb
DEFAULT_TIMEOUT = 60.0
DEFAULT_RESULT_LIMIT = 16 * MiB  # the wire's maxMessageBytes


@dataclass(frozen=True)
class SandboxPolicy:
    """The per-task rules. Defaults are the closed sandbox; every widening is an explicit opt-in
    from the workflow's `sandbox:` block (network, read, write, memory_mb, env)."""

    network: bool = False
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    memory_mb: int = DEFAULT_MEMORY_MB
    disk_mb: int = DEFAULT_DISK_MB  # the most the task may change in its workspace (quota.py); 0: no quota
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    max_output_bytes: int = MiB
    max_processes: int = 64
    max_file_bytes: int = 256 * MiB
    max_open_files: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "read", tuple(self.read))
        object.__setattr__(self, "write", tuple(self.write))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))


@dataclass(frozen=True)
class ExecRequest:
    """One execution. `file` is an absolute path, read inside the sandbox (so it must be visible
    there: the workflow folder, a `read` path or the workspace)."""

    code: str | None = None
    file: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    workspace: str = ""
    read_only: tuple[str, ...] = ()
    policy: SandboxPolicy = field(default_factory=SandboxPolicy)
    max_result_bytes: int = DEFAULT_RESULT_LIMIT
    inputs: str | None = None  # the workflow folder: its entries appear in the workspace (read-only links)
    hidden: tuple[str, ...] = ()  # never visible, even inside a visible folder (the engine's store)


@dataclass
class ExecResult:
    """What the host observed. `ok` is True only when the code finished and `result` is valid JSON."""

    ok: bool
    result: Any = None
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    error_type: str | None = None
    error_message: str | None = None
    traceback: list[str] | None = None
    timed_out: bool = False
    retryable: bool = True
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    exit_signal: int | None = None
    wall_ms: float = 0.0
