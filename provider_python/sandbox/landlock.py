"""Landlock (Linux >= 5.13) through raw syscalls: filesystem allow-list, TCP deny, signal scoping.

Own implementation rather than the `landlock` package: that one stops at ABI 5 and cannot express
network rules (ABI 4) or the signal / abstract-socket scopes (ABI 6) we rely on.
"""

from __future__ import annotations

import ctypes
import os
import platform

from provider_python.sandbox import syscalls

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # identical on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ_RIGHTS = EXECUTE | READ_FILE | READ_DIR
# Never granted, even in writable folders: a device node made there would open the host's disks.
_NEVER = MAKE_CHAR | MAKE_BLOCK | IOCTL_DEV

NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """0 when Landlock is missing (old kernel, disabled LSM, not Linux)."""
    if platform.system() != "Linux":
        return 0
    try:
        return syscalls.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except OSError:
        return 0


def handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(abi: int, read: list[str], write: list[str], *, deny_tcp: bool) -> None:
    """Confine this process (and its future children) to `read` (read/execute) and `write` (all)."""
    enforce(ruleset(abi, read, write, deny_tcp=deny_tcp))


def ruleset(abi: int, read: list[str], write: list[str], *, deny_tcp: bool) -> int:
    """Build the ruleset (an fd). Done while still privileged: opening the paths may need to
    traverse folders the unprivileged sandbox user could not. Paths that do not exist are skipped.
    Rules hold the objects the paths named when they were added (a bind mount of a folder and
    the folder are one object), so a ruleset can be built ahead of time and `extend`ed later."""
    fs = handled_fs(abi)
    attr = _RulesetAttr(fs, 0, 0)
    size = 8
    if abi >= 4 and deny_tcp:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    fd = syscalls.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        extend(fd, abi, read, write)
    except BaseException:
        os.close(fd)
        raise
    return fd


def extend(ruleset_fd: int, abi: int, read: list[str], write: list[str]) -> None:
    """Add read (read/execute) and write (all) rules to a ruleset not yet enforced."""
    fs = handled_fs(abi)
    for paths, rights in ((read, READ_RIGHTS), (write, fs & ~_NEVER)):
        for path in paths:
            _allow(ruleset_fd, path, rights & fs)


def enforce(ruleset_fd: int) -> None:
    """Apply a ruleset to this process for good (needs no_new_privs, set by the caller)."""
    try:
        syscalls.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))
    finally:
        os.close(ruleset_fd)


def _allow(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        syscalls.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                         ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        os.close(fd)
