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

from provider_python.sandbox.quota import Quota
from provider_python.sandbox.syscalls import (
    MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, bind_idmapped, idmap_userns, mount,
    umount_detached,
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


def shared_paths(python_mounts: tuple[str, ...] | list[str]) -> list[str]:
    """The read-only host paths every execution sees: the system's and the task interpreter's."""
    return [p for p in SYSTEM_PATHS if os.path.lexists(p)] + list(python_mounts)


class Root:
    """The root filesystem of one sandbox, assembled under `stage` (an empty directory) inside a
    private mount namespace: the parts every execution shares ahead of time (`prepare`), the
    execution's own folders just before it runs (`enter`).

    `idmap_to` (the sandbox uid, when it is dropped to): each writable folder is bound idmapped,
    its owner on disk appearing as that uid, so the sandbox may write a folder of root's (or
    anyone's) without it being made world-writable, and what it writes belongs to the folder's
    owner on disk, not to `nobody`."""

    def __init__(self, stage: str, *, idmap_to: int | None = None, root_userns: int | None = None):
        """`root_userns`: a user namespace already mapping root to `idmap_to` (the fork server
        makes one for every slot), used instead of making one here."""
        self.stage = stage
        self.idmap_to = idmap_to
        self.userns: dict[tuple[int, int], int] = {}  # on-disk owner -> user namespace fd mapping it
        if idmap_to is not None and root_userns is not None:
            self.userns[0, 0] = root_userns
        self._proc = "/proc"
        self._placed: dict[str, bool] = {}  # host path -> bound writable?
        self._masked: set[str] = set()
        self._quota: Quota | None = None

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
        self._place_all(read_only, [], [])
        os.makedirs(stage + "/proc", exist_ok=True)
        if with_proc:  # shows only the sandbox's PID namespace: must run inside it
            mount("proc", stage + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            self._proc = stage + "/proc"
        if self.idmap_to is not None:
            self.userns_for(0, 0)  # root's, the usual owner of workspaces: ahead of time

    def userns_for(self, uid: int, gid: int) -> int:
        if (uid, gid) not in self.userns:
            self.userns[uid, gid] = idmap_userns(uid, gid, self.idmap_to, proc=self._proc)
        return self.userns[uid, gid]

    def release(self) -> None:
        for fd in self.userns.values():
            os.close(fd)
        self.userns.clear()

    def enter(self, read_only: list[str], writable: list[str], hidden: list[str] = (), *, tmp_mb: int,
              quota: Quota | None = None) -> None:
        """Size /tmp and /dev/shm (together `tmp_mb`, the task's memory limit: they are RAM), bind
        the execution's folders (the workspace through `quota`'s overlay when there is one), cover
        `hidden` ones that a bound folder would show, and chroot."""
        self._quota = quota
        for tmp, share in (("/tmp", 3 / 4), ("/dev/shm", 1 / 4)):
            mount(None, self.stage + tmp, None, MS_REMOUNT | MS_NOSUID | MS_NODEV, f"size={max(int(tmp_mb * share), 1)}m")
        self._place_all(read_only, writable, hidden)
        os.chdir(self.stage)
        os.chroot(".")
        os.chdir("/")

    def _place_all(self, read_only: list[str], writable: list[str], hidden: list[str]) -> None:
        """Shallow paths first; at one depth read-only, then writable, then masks, so a mask covers
        what its folder's bind showed and a deeper bind (the run's own workspace) sits on top."""
        wanted = [(p, 0) for p in read_only] + [(p, 1) for p in writable] + [(p, 2) for p in hidden]
        for path, kind in sorted(wanted, key=lambda pk: (os.path.normpath(pk[0]).count(os.sep), pk[1])):
            if kind == 2:
                self._mask(os.path.normpath(path))
            else:
                self._place(path, kind == 1)
        for path in self._masked:  # writable until now: deeper binds needed their mount points
            if os.path.isdir(self.stage + path):
                mount(None, self.stage + path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

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
        userns = None
        if rw and self.idmap_to is not None and (st := os.stat(path)).st_uid != self.idmap_to:
            userns = self.userns_for(st.st_uid, st.st_gid)
        if rw and self._quota is not None and path == os.path.normpath(self._quota.workspace):
            os.makedirs(self.stage + path, exist_ok=True)
            self._quota.mount(self.stage + path, userns)
        else:
            _bind(self.stage, path, writable=rw, userns_fd=userns)
        self._placed[path] = rw

    def _mask(self, path: str) -> None:
        """Hide `path` if a bound ancestor shows it: an empty read-only tmpfs over a folder, a
        device node (unusable: nodev) over a file."""
        if not os.path.lexists(path) or not self._covered(path, False):
            return
        target = self.stage + path
        if os.path.isdir(target):
            _detach_below(target)  # e.g. this very root, bound with a folder holding the state dir
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k")
            for inner, rw in list(self._placed.items()):  # bound earlier (e.g. a venv inside the home): again on top
                if inner.startswith(path + os.sep):
                    _bind(self.stage, inner, writable=rw)
        else:
            mount(self.stage + "/dev/null", target, None, MS_BIND)
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV | MS_NOSUID | MS_NOEXEC)
        self._masked.add(path)

    def _covered(self, path: str, rw: bool) -> bool:
        """Already visible through a bound ancestor with at least the same rights (a mask in
        between hides it again)."""
        probe = path
        while True:
            if probe in self._masked:
                return False
            if probe in self._placed and (self._placed[probe] or not rw):
                return True
            parent = os.path.dirname(probe)
            if parent == probe:
                return False
            probe = parent


def _detach_below(folder: str) -> None:
    """Unmount what a recursive bind brought along below `folder` before it is masked: covered
    mounts stay listed in the task's /proc/self/mountinfo, with the host paths they sit on. Best
    effort (it hides names, it is not a wall): a listed mount that a later bind already covers
    is not reachable by its path and stays."""
    prefix = folder.rstrip("/") + "/"
    with open("/proc/self/mountinfo", "rb") as fh:
        points = [_unescape(line.split(b" ", 5)[4]) for line in fh]
    below = sorted((p for p in points if p.startswith(prefix)), key=len)
    done: list[str] = []
    for point in below:
        if not any(point.startswith(d + "/") for d in done):
            try:
                umount_detached(point)
            except OSError:
                continue
            done.append(point)


def _unescape(field: bytes) -> str:
    """mountinfo's octal escapes (space, tab, newline, backslash)."""
    return os.fsdecode(field.decode("unicode_escape").encode("latin-1"))


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
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)  # as open(): past the umask
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _bind(stage: str, source: str, *, writable: bool, userns_fd: int | None = None) -> None:
    target = stage + source
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    if writable and userns_fd is not None:
        try:
            bind_idmapped(source, target, userns_fd)
            return
        except OSError:
            pass  # a filesystem without idmapped mounts (e.g. NFS): a plain bind, writable as on disk
    mount(source, target, None, MS_BIND | MS_REC)
    locked = _mount_flags(target)  # inside a user namespace these may not be cleared: keep them
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | locked | (0 if writable else MS_RDONLY))


def _mount_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return (MS_NOEXEC if flags & os.ST_NOEXEC else 0) | (MS_RDONLY if flags & os.ST_RDONLY else 0)
