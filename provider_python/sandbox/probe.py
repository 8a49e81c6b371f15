"""Which isolation layers work on this machine, tested for real in throw-away forked children
(namespaces may be compiled in but forbidden, e.g. inside some containers)."""

from __future__ import annotations

import json
import os
import sys
from typing import Callable

from provider_python.sandbox import landlock, rootfs, seccomp, syscalls
from provider_python.sandbox.child import SANDBOX_UID
from provider_python.sandbox.quota import Quota
from provider_python.sandbox.template import Template

# Every layer the sandbox knows, strongest first; `subreaper` only matters without `pidns`.
LAYERS = ("process", "env", "rlimits", "caps", "uid", "pidns", "mountns", "netns", "ipcns", "landlock",
          "seccomp", "subreaper", "idmap", "diskquota")
ALWAYS = ("process", "env")


def probe(tpl: Template, stage: str) -> dict[str, bool | str | int]:
    """layer -> True, or a one-line reason why it is unavailable."""
    abi = tpl.landlock_abi
    tests: dict[str, Callable[[], object]] = {
        "rlimits": lambda: __import__("resource"),
        "caps": _drop_capabilities,
        "uid": _drop_uid,
        "pidns": _pid_namespace,
        "mountns": lambda: _mount_namespace(stage, tpl, with_proc=found.get("pidns") is True),
        "netns": lambda: syscalls.unshare(syscalls.CLONE_NEWNET),
        "ipcns": lambda: syscalls.unshare(syscalls.CLONE_NEWIPC | syscalls.CLONE_NEWUTS),
        "landlock": lambda: _landlock(abi),
        "seccomp": lambda: _seccomp(tpl),
        "subreaper": lambda: syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1),
        "idmap": lambda: _idmapped_bind(stage),
        "diskquota": lambda: _quota_overlay(stage),
    }
    found: dict[str, bool | str | int] = {layer: True for layer in ALWAYS}  # filled in order: mountns reads pidns
    for layer, test in tests.items():
        found[layer] = _in_child(test)
    if found["landlock"] is True:
        found["landlock_abi"] = abi
    return found


def _drop_capabilities() -> None:
    if os.geteuid() == 0:
        syscalls.drop_bounding_set()
    syscalls.clear_capabilities()


def _drop_uid() -> None:
    syscalls.drop_uid(SANDBOX_UID)


def _pid_namespace() -> None:
    syscalls.unshare(syscalls.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("the child is not PID 1 of a new namespace")


def _mount_namespace(stage: str, tpl: Template, *, with_proc: bool) -> None:
    """Build and enter a real root, /proc included when there will be a PID namespace: user
    namespaces (rootless containers) forbid some of it (device nodes, a new proc over a masked one)."""
    syscalls.unshare(syscalls.CLONE_NEWNS | (syscalls.CLONE_NEWPID if with_proc else 0))
    pid = os.fork() if with_proc else 0
    if pid == 0:
        root = rootfs.Root(stage)
        root.prepare(tpl.shared_paths, with_proc=with_proc)
        root.enter([], [], tmp_mb=1)
        if with_proc:
            os._exit(0)
        return
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError(f"building the sandbox root failed (status {status})")


def _idmapped_bind(stage: str) -> None:
    """Writable folders bound idmapped (root on disk = the sandbox uid inside): kernel >= 5.12 and
    a filesystem that supports it; tried on the state folder, where workspaces usually live."""
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    userns = syscalls.idmap_userns(0, 0, SANDBOX_UID)
    syscalls.bind_idmapped(stage, stage, userns)
    if os.stat(stage).st_uid != SANDBOX_UID:
        raise OSError("idmapped mount did not translate ownership")


def _quota_overlay(stage: str) -> None:
    """The workspace quota's overlay (quota.py) over a size-limited tmpfs, on a throw-away tmpfs."""
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    syscalls.mount("tmpfs", stage, "tmpfs", 0, "size=1m")
    for name in ("ws", "q", "merged"):
        os.mkdir(os.path.join(stage, name))
    Quota(os.path.join(stage, "ws"), os.path.join(stage, "q"), 1).mount(os.path.join(stage, "merged"), None)
    with open(os.path.join(stage, "merged", "probe"), "w") as fh:
        fh.write("x")
    if not os.path.exists(os.path.join(stage, "q", "upper", "probe")):
        raise OSError("the overlay did not write its upper layer")


def _landlock(abi: int) -> None:
    if abi < 1:
        raise OSError("Landlock is not supported by this kernel (needs Linux >= 5.13 with the LSM enabled)")
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    landlock.restrict(abi, ["/"], [], deny_tcp=True)


def _seccomp(tpl: Template) -> None:
    if not tpl.filters:
        raise OSError(tpl.seccomp_error or "seccomp unavailable")
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    seccomp.install(tpl.filters[False])


def _in_child(test: Callable[[], object]) -> bool | str:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            test()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(write_end, str(exc).encode()[:500] or type(exc).__name__.encode())
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        reason = fh.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return True
    return reason or f"failed (status {status})"


if __name__ == "__main__":  # `python -m provider_python.sandbox.probe /some/empty/dir` -> JSON
    syscalls.enter_user_namespace()  # as the fork server and fresh supervisors do
    print(json.dumps(probe(Template.prepare(preload=False), sys.argv[1])))
