"""A minimal root filesystem per execution, built in a private mount namespace.

A tmpfs becomes `/`; into it we bind the system libraries, the Python installation and the
workflow folder read-only, the workspace (and `write` opt-ins) read-write, a private `/tmp` and
`/dev/shm`, a handful of devices, stub /etc files, then chroot. Whatever is not bound does not
exist for the sandbox (home directories, /root, project checkouts, host sockets). Chroot is
enough because the sandbox never holds CAP_SYS_CHROOT afterwards.
"""

from __future__ import annotations

import os
import stat
import sys
import sysconfig

from provider_python.sandbox.syscalls import (
    MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, mount,
)

SYSTEM_PATHS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin",
                "/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")
NETWORK_PATHS = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf",
                 "/etc/host.conf", "/etc/services", "/etc/protocols", "/etc/ssl",
                 "/etc/ca-certificates", "/etc/pki")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
STUB_FILES = {
    "/etc/passwd": "root:x:0:0:root:/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n",
    "/etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "/etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
}


def shared_paths() -> list[str]:
    """The read-only host paths every execution sees: the system's and the interpreter's."""
    return [p for p in SYSTEM_PATHS if os.path.lexists(p)] + python_paths()


def python_paths() -> list[str]:
    """The interpreter's own trees (stdlib, site-packages, a venv and its base), nothing else:
    sys.path entries outside them (the current project, an editable checkout) stay hidden."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(p for k, p in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib"))
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    real = sorted({os.path.realpath(r) for r in roots if r and os.path.exists(r)})
    return [r for r in real if not any(r != o and r.startswith(o + os.sep) for o in real)]


class Root:
    """The root filesystem of one sandbox, assembled under `stage` (an empty directory) inside a
    private mount namespace: the parts every execution shares ahead of time (`prepare`), the
    execution's own folders just before it runs (`enter`)."""

    def __init__(self, stage: str):
        self.stage = stage
        self._placed: dict[str, bool] = {}  # host path -> bound writable?

    def prepare(self, read_only: list[str], *, with_proc: bool) -> None:
        stage = self.stage
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("tmpfs", stage, "tmpfs", MS_NOSUID, "mode=0755,size=4m")  # dev allowed: holds /dev/null & co
        _tmpfs(stage + "/tmp")
        _tmpfs(stage + "/dev/shm")
        for dev in DEVICES:
            _device(stage + dev, dev)
        for path, text in STUB_FILES.items():
            _write_stub(stage + path, text)
        self._place_all(read_only, [])
        os.makedirs(stage + "/proc", exist_ok=True)
        if with_proc:  # shows only the sandbox's PID namespace: must run inside it
            mount("proc", stage + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)

    def enter(self, read_only: list[str], writable: list[str], *, tmp_mb: int) -> None:
        """Size /tmp and /dev/shm, bind the execution's folders, and chroot into the root."""
        for tmp in ("/tmp", "/dev/shm"):
            mount(None, self.stage + tmp, None, MS_REMOUNT | MS_NOSUID | MS_NODEV, f"size={max(tmp_mb, 1)}m")
        self._place_all(read_only, writable)
        os.chdir(self.stage)
        os.chroot(".")
        os.chdir("/")

    def _place_all(self, read_only: list[str], writable: list[str]) -> None:
        wanted = [(p, False) for p in read_only] + [(p, True) for p in writable]
        for path, rw in sorted(wanted, key=lambda pw: (pw[0].count(os.sep), pw[1])):
            self._place(path, rw)

    def _place(self, path: str, rw: bool) -> None:
        path = os.path.normpath(path)
        if not os.path.lexists(path) or self._covered(path, rw):
            return
        if os.path.islink(path):
            target = self.stage + path
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.lexists(target):
                os.symlink(os.readlink(path), target)
            self._place(os.path.realpath(path), rw)
            return
        _bind(self.stage, path, writable=rw)
        self._placed[path] = rw

    def _covered(self, path: str, rw: bool) -> bool:
        """Already visible through a bound ancestor with at least the same rights."""
        probe = path
        while True:
            if probe in self._placed and (self._placed[probe] or not rw):
                return True
            parent = os.path.dirname(probe)
            if parent == probe:
                return False
            probe = parent


def _tmpfs(target: str) -> None:
    os.makedirs(target, exist_ok=True)
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=1m")  # sized per execution


def _device(target: str, source: str) -> None:
    """A node for one of the harmless character devices: made (cheaper), or bound where mknod is
    not allowed (inside a user namespace, e.g. a rootless container)."""
    try:
        os.mknod(target, stat.S_IFCHR | 0o666, os.stat(source).st_rdev)
        os.chmod(target, 0o666)  # past the umask
    except PermissionError:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
        mount(source, target, None, MS_BIND)


def _write_stub(target: str, text: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w") as fh:
        fh.write(text)


def _bind(stage: str, source: str, *, writable: bool) -> None:
    target = stage + source
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    mount(source, target, None, MS_BIND | MS_REC)
    locked = _mount_flags(target)  # inside a user namespace these may not be cleared: keep them
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | locked | (0 if writable else MS_RDONLY))


def _mount_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return (MS_NOEXEC if flags & os.ST_NOEXEC else 0) | (MS_RDONLY if flags & os.ST_RDONLY else 0)
