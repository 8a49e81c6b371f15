"""Thin ctypes wrappers for the Linux calls Python 3.11's `os` lacks (unshare, mount, prctl...).

Everything degrades to `OSError(ENOSYS)` off Linux so callers can treat it as "layer unavailable".
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWCGROUP = 0x02000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_LAST = 63  # more than any kernel defines; unknown ones fail with EINVAL and are skipped

M_ARENA_MAX = -8

IS_LINUX = sys.platform.startswith("linux")
_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _linux_only(what: str) -> None:
    if not IS_LINUX:
        raise OSError(errno.ENOSYS, f"{what}: not available on {sys.platform}")


def unshare(flags: int) -> None:
    _linux_only("unshare")
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _linux_only("setns")
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def enter_user_namespace() -> bool:
    """Unprivileged only: become root of a new user namespace mapped to our own uid and gid (what
    rootless containers do), so that PID, mount and network namespaces can be created. Best
    effort: False, and nothing changed, where user namespaces are disabled."""
    if not IS_LINUX or os.geteuid() == 0:
        return False
    uid, gid = os.geteuid(), os.getegid()
    try:
        unshare(CLONE_NEWUSER)
    except OSError:
        return False
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    return True


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _linux_only("mount")
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    ret = _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))
    _check(ret, f"mount {target}")


def umount_detached(target: str) -> None:
    """Lazily detach the mount at `target` and everything mounted below it."""
    _linux_only("umount2")
    _check(_libc.umount2(os.fsencode(target), ctypes.c_int(MNT_DETACH)), f"umount {target}")


AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 1, os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_IDMAP = 0x1, 0x2, 0x4, 0x00100000
_OPEN_TREE, _MOVE_MOUNT, _MOUNT_SETATTR = 428, 429, 442  # the same on every architecture


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def idmap_userns(uid: int, gid: int, outside: int, *, proc: str = "/proc") -> int:
    """An fd of a new user namespace whose only mappings are `uid` and `gid` -> `outside`, for
    idmapped mounts: a file owned by uid:gid on disk then appears owned by outside:outside.
    `proc`: a procfs of this process's PID namespace."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            unshare(CLONE_NEWUSER)
            os.write(ready_w, b"x")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    try:
        os.close(ready_w)
        if os.read(ready_r, 1) != b"x":
            raise OSError(errno.EPERM, "idmap: cannot create a user namespace")
        for name, inside in (("uid_map", uid), ("gid_map", gid)):
            with open(f"{proc}/{pid}/{name}", "w") as fh:
                fh.write(f"{inside} {outside} 1")
        return os.open(f"{proc}/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        for fd in (ready_r, done_r, done_w):
            os.close(fd)
        os.waitpid(pid, 0)


def bind_idmapped(source: str, target: str, userns_fd: int) -> None:
    """Bind `source` (not its submounts) onto `target`, ids translated through `userns_fd`, nosuid,
    nodev. Fails (OSError) on filesystems without idmapped-mount support."""
    tree = syscall(_OPEN_TREE, ctypes.c_int(AT_FDCWD), os.fsencode(source), ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC))
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, userns_fd)
        syscall(_MOUNT_SETATTR, ctypes.c_int(tree), b"", ctypes.c_uint(AT_EMPTY_PATH), ctypes.byref(attr),
                ctypes.c_size_t(ctypes.sizeof(attr)))
        syscall(_MOVE_MOUNT, ctypes.c_int(tree), b"", ctypes.c_int(AT_FDCWD), os.fsencode(target),
                ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
    finally:
        os.close(tree)


def drop_uid(uid: int) -> None:
    """Become `uid` (group `uid`, no supplementary groups) for good: real, effective and saved."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def prctl(option: int, arg2: int = 0) -> None:
    _linux_only("prctl")
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_bounding_set() -> None:
    """Empty the capability bounding set (needs CAP_SETPCAP, so before any uid change): nothing
    executed later can regain a capability."""
    _linux_only("prctl")
    for cap in range(_CAP_LAST + 1):
        if _libc.prctl(ctypes.c_int(PR_CAPBSET_DROP), ctypes.c_ulong(cap), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)) == -1:
            if ctypes.get_errno() == errno.EINVAL:
                return  # past the last capability this kernel knows
            _check(-1, "prctl(PR_CAPBSET_DROP)")


def clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets: a process still running as root (no
    uid drop possible) then has no more power than its uid's file ownership."""
    _linux_only("capset")
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(_CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)), data), "capset")


def prctl_ptr(option: int, arg2: int, pointer: object) -> None:
    """prctl whose third argument is a pointer (e.g. PR_SET_SECCOMP with a filter program)."""
    _linux_only("prctl")
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), pointer, ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), "prctl")


def syscall(number: int, *args: object) -> int:
    """Raw syscall; arguments must already be ctypes-compatible."""
    _linux_only("syscall")
    return _check(_libc.syscall(ctypes.c_long(number), *args), f"syscall {number}")


def limit_malloc_arenas(count: int) -> None:
    """Each thread's glibc arena reserves 64 MiB of address space; few arenas keep RLIMIT_AS honest."""
    mallopt = getattr(_libc, "mallopt", None)
    if mallopt is not None:
        mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(count))
