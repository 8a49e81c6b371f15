"""The interpreter that runs task code, and what it can import.

The fork server starts as `python -I -S` (no PYTHON* variables, no `site`), so on its own it
sees neither a venv's site-packages nor the `--user` site. Instead the host asks the task
interpreter once, with `site` enabled, for its import path (`describe`, run in a subprocess);
the sandbox mounts those folders read-only and gives user code exactly that `sys.path`. Paths
that `.pth` files add outside the installation (editable checkouts) are left out: they are
project folders, not installed packages.
"""

from __future__ import annotations

import json
import os
import site
import sys
import sysconfig
from dataclasses import dataclass

ENV_VAR = "GLEITZEIT_SANDBOX_INTERPRETER"  # how the host hands the description to the fork server


@dataclass(frozen=True)
class TaskPython:
    executable: str
    sys_path: tuple[str, ...]  # the import path user code gets
    mounts: tuple[str, ...]  # read-only trees that make it work (prefixes, site folders)

    def to_json(self) -> str:
        return json.dumps({"executable": self.executable, "sys_path": self.sys_path, "mounts": self.mounts})

    @classmethod
    def from_json(cls, text: str) -> "TaskPython":
        data = json.loads(text)
        return cls(str(data["executable"]), tuple(data["sys_path"]), tuple(data["mounts"]))

    @classmethod
    def from_env(cls) -> "TaskPython":
        """What the host put into this process's environment (fork server, fresh supervisor, probe)."""
        return cls.from_json(os.environ[ENV_VAR])


def describe() -> TaskPython:
    """This interpreter (run with `site` enabled): its installation trees and the entries of
    sys.path inside them (stdlib, venv/system site-packages, the user site)."""
    sites = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        sites.append(site.getusersitepackages())
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), *sites}
    roots.update(p for k, p in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib"))
    real_roots = {os.path.realpath(r) for r in roots if r and os.path.isdir(r)}
    kept = [p for p in sys.path if p and os.path.exists(p) and _inside(os.path.realpath(p), real_roots)]
    return TaskPython(sys.executable, tuple(dict.fromkeys(kept)), tuple(outermost(real_roots)))


def outermost(paths: set[str] | list[str]) -> list[str]:
    """The paths not inside another one of them (binding those covers the rest)."""
    ordered = sorted(set(paths))
    return [p for p in ordered if not any(p != o and p.startswith(o.rstrip(os.sep) + os.sep) for o in ordered)]


def _inside(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


if __name__ == "__main__":  # `python -E -c ...` from the host: print the description
    sys.stdout.write(describe().to_json())
