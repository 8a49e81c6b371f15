"""Seccomp syscall filter: socket families, namespace/mount/tracing/kernel-attack-surface calls.

Filters are compiled to BPF in the fork-server template (importing libseccomp costs ~10 ms and
compiling its rule set ~0.3 ms) and each child only installs the bytes with one prctl.
`pyseccomp` is optional: without it the layer reports unavailable.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import tempfile

from provider_python.sandbox import syscalls

try:
    import pyseccomp as _sc
except (ImportError, OSError):  # module missing, or libseccomp.so missing
    _sc = None

# Syscalls no sandboxed Python program needs; each one is either a privilege or an escape route
# (io_uring bypasses seccomp for the socket calls it performs, userfaultfd/bpf/perf are common
# kernel exploit entry points, ptrace/process_vm_* would reach other sandboxes of the same uid).
_DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
    "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "swapon", "swapoff", "reboot", "acct",
    "open_by_handle_at", "name_to_handle_at", "quotactl", "syslog", "fsopen", "fsmount", "fsconfig",
    "move_mount", "open_tree", "mount_setattr",
)
_NAMESPACE_FLAGS = (0x00020000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x02000000)
_NETWORK_FAMILIES = frozenset({socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK})
_FAMILY_LIMIT = 64  # AF_MAX is 46 on current kernels
# Where a mode argument can carry the set-user/group-ID bits (syscall -> argument index). Files the
# sandbox writes through an idmapped folder belong to the host user (often root) on disk, so a
# set-uid bit there would be a set-uid-root program for anyone outside.
_MODE_ARGS = {"chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2, "creat": 1, "open": 2, "openat": 3,
              "mknod": 1, "mknodat": 2}
_SETID_BITS = 0o6000


def available() -> bool:
    return _sc is not None


def compile_bpf(*, network: bool) -> bytes:
    """The filter as a BPF program (native byte order). Without network no socket() family is allowed at all:
    the runner needs none, and AF_UNIX would reach host sockets visible in shared folders."""
    if _sc is None:
        raise OSError(errno.ENOSYS, "seccomp: pyseccomp/libseccomp not installed")
    flt = _sc.SyscallFilter(_sc.ALLOW)
    deny = _sc.ERRNO(errno.EPERM)
    for name in _DENIED:
        try:
            flt.add_rule(deny, name)
        except (OSError, ValueError, RuntimeError):
            continue  # syscall unknown on this architecture
    # Their flags / mode live in a struct seccomp cannot read: callers fall back to clone / openat.
    for name, number in (("clone3", 435), ("openat2", 437)):  # same number on every architecture
        try:
            flt.add_rule(_sc.ERRNO(errno.ENOSYS), name)
        except (OSError, ValueError, RuntimeError):
            flt.add_rule(_sc.ERRNO(errno.ENOSYS), number)  # newer than this libseccomp
    for name, arg in _MODE_ARGS.items():
        for bits in (0o2000, 0o4000, 0o6000):
            try:
                flt.add_rule(deny, name, _sc.Arg(arg, _sc.MASKED_EQ, _SETID_BITS, bits))
            except (OSError, ValueError, RuntimeError):
                break  # syscall unknown on this architecture (or to this libseccomp)
    for flag in _NAMESPACE_FLAGS:
        flt.add_rule(deny, "clone", _sc.Arg(0, _sc.MASKED_EQ, flag, flag))
    allowed = _NETWORK_FAMILIES if network else frozenset()
    refuse = _sc.ERRNO(errno.EACCES)
    for family in range(_FAMILY_LIMIT):
        if family not in allowed:
            flt.add_rule(refuse, "socket", _sc.Arg(0, _sc.EQ, family))
    flt.add_rule(refuse, "socket", _sc.Arg(0, _sc.GE, _FAMILY_LIMIT))
    with tempfile.TemporaryFile() as fh:
        flt.export_bpf(fh)
        fh.seek(0)
        return fh.read()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


def install(bpf: bytes) -> None:
    """Install a compiled filter on this thread (needs no_new_privs, set by the caller); it is
    inherited by every child and cannot be removed."""
    program = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(program, ctypes.c_void_p))
    syscalls.prctl_ptr(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog))
