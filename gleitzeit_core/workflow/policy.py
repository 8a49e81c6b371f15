"""What a workflow may grant itself, bounded by what the person running it allows.

A workflow file is untrusted, and the one running it may be root. Its ``sandbox:``
blocks and ``providers:`` list are *requests*; the runner's ``Allowance`` (config
``sandbox.allow_*`` / ``providers.allow_workflow``, or ``--allow-*`` flags) decides.
The loader asks these functions while it still knows where each key was written,
so a refusal is one ``file:line:col`` line naming the key and how to allow it.
Paths are compared after resolving symlinks and ``..``, and it is the resolved path
the provider receives, so the path that was checked is the path that is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: ``memory_mb`` a workflow may ask for without the runner raising the cap.
DEFAULT_MAX_MEMORY_MB = 4096
#: a python task's workspace quota unless its ``sandbox: {disk_mb}`` asks for less (0: none).
DEFAULT_MAX_DISK_MB = 1024


@dataclass(frozen=True)
class Allowance:
    """The runner's limits on what a workflow may ask for. The default allows nothing extra."""

    read: tuple[str, ...] = ()  # folders a sandbox may be given read-only (besides the workflow folder)
    write: tuple[str, ...] = ()  # folders a sandbox may be given read-write (and read)
    network: bool = False
    max_memory_mb: int = DEFAULT_MAX_MEMORY_MB
    max_disk_mb: int = DEFAULT_MAX_DISK_MB
    workflow_providers: bool = False  # may `providers:` in the file start programs
    private: tuple[str, ...] = ()  # Gleitzeit's own state: never a sandbox path, whatever is allowed

    @staticmethod
    def of(read: list[str] | tuple[str, ...] = (), write: list[str] | tuple[str, ...] = (), *,
           network: bool = False, max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
           max_disk_mb: int = DEFAULT_MAX_DISK_MB,
           workflow_providers: bool = False, private: tuple[str, ...] = ()) -> Allowance:
        """Folders as the runner wrote them (``~`` expanded, symlinks resolved)."""
        return Allowance(tuple(resolve(p) for p in read), tuple(resolve(p) for p in write),
                         network=network, max_memory_mb=max_memory_mb, max_disk_mb=max_disk_mb,
                         workflow_providers=workflow_providers,
                         private=private)


def resolve(path: str, base: str | None = None) -> str:
    """Absolute, ``~`` expanded, symlinks and ``..`` resolved; relative to ``base`` (else cwd)."""
    path = os.path.expanduser(path)
    return os.path.realpath(os.path.join(base or os.getcwd(), path))


def inside(path: str, root: str) -> bool:
    """Whether resolved ``path`` is ``root`` or below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def refuse_network(allowance: Allowance) -> str | None:
    if allowance.network:
        return None
    return ("'network: true' gives the code this machine's network; refused unless you allow it: "
            "run with --allow-network (or set sandbox.allow_network: true in the config)")


def refuse_memory(requested: int, allowance: Allowance) -> str | None:
    if requested <= allowance.max_memory_mb:
        return None
    return (f"'memory_mb: {requested}' is above the {allowance.max_memory_mb} MiB you allow; "
            f"ask for less, or raise the cap: --max-memory-mb {requested} "
            f"(or sandbox.max_memory_mb in the config)")


def refuse_disk(requested: int, allowance: Allowance) -> str | None:
    if allowance.max_disk_mb == 0 or requested <= allowance.max_disk_mb:  # 0: the runner set no quota
        return None
    return (f"'disk_mb: {requested}' is above the {allowance.max_disk_mb} MiB workspace quota you allow; "
            f"ask for less, or raise the cap: sandbox.max_disk_mb in the config "
            f"(or GLEITZEIT_SANDBOX_MAX_DISK_MB={requested})")


def refuse_path(path: str, kind: str, allowance: Allowance, workflow_dir: str | None) -> str | None:
    """Why resolved ``path`` may not be a sandbox ``read``/``write`` path, or None if it may."""
    private = next((p for p in allowance.private if inside(path, p)), None)
    if private is not None:
        return (f"{kind} path {path!r} is inside {private!r}, Gleitzeit's own state (the store, run "
                f"workspaces, registered providers); no task may see it, whatever is allowed")
    roots = allowance.write if kind == "write" else allowance.read + allowance.write
    if kind == "read" and workflow_dir is not None and inside(path, resolve(workflow_dir)):
        return None  # the workflow folder is visible to its tasks anyway
    if any(inside(path, root) for root in roots):
        return None
    flag = "--allow-write" if kind == "write" else "--allow-read"
    return (f"{kind} path {path!r} is not in a folder you allow; refused unless you allow it: "
            f"run with {flag} {path} (or add it to sandbox.allow_{kind} in the config)")


def refuse_manifest_path(path: str, workflow_dir: str | None) -> str | None:
    """A manifest a workflow names must lie in the workflow's folder; checked before reading it."""
    if workflow_dir is not None and inside(path, resolve(workflow_dir)):
        return None
    return (f"provider manifest {path!r} is outside the workflow folder; a workflow may only bring "
            f"manifests from its own folder (or register it: gleitzeit provider add MANIFEST)")


def refuse_providers(allowance: Allowance) -> str | None:
    if allowance.workflow_providers:
        return None
    return ("'providers' starts programs the workflow file names; refused unless you allow it: "
            "run with --allow-providers (or set providers.allow_workflow: true in the config), "
            "or register the provider: gleitzeit provider add MANIFEST")
