"""Files a task names (``file_path``, ``image_path``), read under the sandbox's rules.

In the SDK because both sides need it: a provider reading a file parameter (the LLM
provider's ``file_path``/``image_path``) and the engine hashing what a task reads for its
cache key (``gleitzeit_core.cache.files``) must confine it the same way.

A workflow is untrusted and the provider may run as root, so a path in a parameter is
never opened with the provider's rights on the workflow's say-so. The rules are the
Python sandbox's:

* A relative path is relative to the workflow folder (``_meta.workflowDir``); an
  absolute one must lie in the workflow folder or in one of the task's ``sandbox.read``
  folders (which the engine passes after checking them against the runner's
  allowances). Nothing else is readable: not ``~``, not ``/etc``.
* The path is resolved by the kernel beneath that folder (``openat2`` with
  ``RESOLVE_BENEATH``): ``..`` or a symlink leading out of it is refused, not followed.
* When the provider runs as root, the file is opened by a forked child that has first
  become the sandbox's user (uid/gid 65534, no groups), so a file that user could not
  read (a root-only ``0600`` file in the workflow folder) is refused exactly as the
  sandbox would refuse it. Otherwise the provider opens it with its own (the invoking
  user's) rights, which are the sandbox's too.
* Never a file in Gleitzeit's own state folders (the store, run workspaces), even when the
  workflow folder contains them (a workflow in ``~`` next to ``~/.gleitzeit``): the opened
  file's real path is checked.
* Only regular files; at most ``limit`` bytes. Refusals name the path, never any content.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SANDBOX_UID = SANDBOX_GID = 65534  # the sandbox's user (nobody), as in provider_python
_SYS_OPENAT2 = 437  # the same number on every Linux architecture
_RESOLVE_NO_MAGICLINKS, _RESOLVE_BENEATH = 0x02, 0x08
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK  # a FIFO must not block the open
_PRIVATE = 254  # "errno" for a file inside a private folder (the child's exit status carries it)


class FileRefused(ValueError):
    """Why a file may not (or cannot) be read; the message names the path, never content."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Roots:
    """Where a task's files may be: its workflow folder and its ``sandbox.read`` folders."""

    workflow_dir: str | None = None
    read: tuple[str, ...] = ()
    private: tuple[str, ...] = ()  # never read from here, even below an allowed folder (the store)

    @staticmethod
    def of(meta: Mapping[str, Any], params: Mapping[str, Any], private: Sequence[str] = ()) -> Roots:
        """From ``_meta.workflowDir`` and the ``sandbox`` parameter the engine sets from the workflow."""
        sandbox = params.get("sandbox")
        read = sandbox.get("read") if isinstance(sandbox, Mapping) else None
        folder = meta.get("workflowDir")
        return Roots(folder if isinstance(folder, str) else None,
                     tuple(p for p in read or () if isinstance(p, str) and os.path.isabs(p)), tuple(private))

    def shown(self, path: str) -> str:
        """How a file is named to the model: a relative path as the workflow folder's file."""
        return os.path.join(self.workflow_dir, path) if self.workflow_dir and not os.path.isabs(path) else path


def read_confined(path: str, roots: Roots, limit: int) -> bytes:
    """The bytes of ``path`` if the sandbox's rules allow reading it; else ``FileRefused``."""
    root, rel = _locate(path, roots.workflow_dir, roots.read)
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise FileRefused(f"cannot open the folder {root!r} it must lie in: {exc.strerror}") from None
    try:
        if _resolves_into(root_fd, rel, roots.private):  # whatever the file's permissions say
            code, data = _PRIVATE, b""
        elif os.geteuid() == 0:
            code, data = _read_as_sandbox_user(root_fd, rel, limit, roots.private)
        else:
            code, data = _read_beneath(root_fd, rel, limit, roots.private)
    finally:
        os.close(root_fd)
    if code:
        raise FileRefused(_explain(code, path, root))
    if len(data) > limit:
        raise FileRefused(f"{path!r} is larger than {limit // (1024 * 1024)} MiB")
    return data


def _locate(path: str, workflow_dir: str | None, read_roots: Sequence[str]) -> tuple[str, str]:
    """(folder, path below it): the folder the kernel resolves ``path`` beneath."""
    if not os.path.isabs(path):
        if not workflow_dir:
            raise FileRefused(f"{path!r} is relative, but this task has no workflow folder; "
                                 "give a path inside a sandbox read folder")
        return workflow_dir, path
    wanted = os.path.normpath(path)
    for root in ([workflow_dir] if workflow_dir else []) + list(read_roots):
        root = os.path.normpath(root)
        if wanted == root or wanted.startswith(root.rstrip(os.sep) + os.sep):
            return root, os.path.relpath(wanted, root)
    raise FileRefused(f"{path!r} is outside the workflow folder and the sandbox read folders; "
                         "put the file there, or add its folder to the workflow's sandbox.read")


def _read_beneath(root_fd: int, rel: str, limit: int, private: Sequence[str]) -> tuple[int, bytes]:
    """(errno or 0, at most limit + 1 bytes), opened beneath ``root_fd`` with this process's rights."""
    try:
        fd = _open_beneath(root_fd, rel)
    except OSError as exc:
        return exc.errno or errno.EIO, b""
    try:
        if _is_private(fd, private):  # the file actually opened, not only the one checked before
            return _PRIVATE, b""
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL, b""
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
        return 0, b"".join(chunks)
    except OSError as exc:
        return exc.errno or errno.EIO, b""
    finally:
        os.close(fd)


def _resolves_into(root_fd: int, rel: str, private: Sequence[str]) -> bool:
    """Whether ``rel`` beneath ``root_fd`` is inside a private folder (resolved by the kernel,
    ``O_PATH``: no read access needed, nothing read)."""
    if not private:
        return False
    try:
        fd = _open_beneath(root_fd, rel, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return False  # the read itself reports why the path cannot be opened
    try:
        return _is_private(fd, private)
    finally:
        os.close(fd)


def _is_private(fd: int, private: Sequence[str]) -> bool:
    real = os.readlink(f"/proc/self/fd/{fd}")
    return any(real == p or real.startswith(p.rstrip(os.sep) + os.sep) for p in private)


def _open_beneath(root_fd: int, rel: str, flags: int = _OPEN_FLAGS) -> int:
    how = _OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(_SYS_OPENAT2, root_fd, os.fsencode(rel), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(fd)


def _read_as_sandbox_user(root_fd: int, rel: str, limit: int, private: Sequence[str]) -> tuple[int, bytes]:
    """``_read_beneath`` in a forked child that became the sandbox's user first.

    The child only makes system calls and leaves with ``os._exit``; it reports an errno
    as its exit status and the bytes through a pipe.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its effect is checked through the parent
        code = errno.EIO
        try:
            os.close(r)
            os.setgroups([])
            os.setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID)
            os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
            code, data = _read_beneath(root_fd, rel, limit, private)
            view = memoryview(data)
            while view:
                view = view[os.write(w, view):]
        finally:
            os._exit(min(code, 255))
    os.close(w)
    chunks, size = [], 0
    try:
        while chunk := os.read(r, 1 << 20):
            if size <= limit:
                chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return (code if code > 0 else errno.EIO if code < 0 else 0), b"".join(chunks)


def _explain(code: int, path: str, root: str) -> str:
    if code == _PRIVATE:
        return f"{path!r} is part of Gleitzeit's own state (the store, run workspaces); no task may read it"
    if code == errno.EXDEV:
        return f"{path!r} leads out of {root!r} (through '..' or a symlink); files must lie inside it"
    if code == errno.ENOENT:
        return f"file not found: {path!r} (looked in {root!r})"
    if code in (errno.EACCES, errno.EPERM):
        who = f"the sandbox user (uid {SANDBOX_UID})" if os.geteuid() == 0 else "you"
        return f"permission denied: {path!r} is not readable by {who}; the provider reads files as the sandbox would"
    if code == errno.EISDIR:
        return f"{path!r} is a directory, not a file"
    if code == errno.EINVAL:
        return f"{path!r} is not a regular file"
    if code == errno.ELOOP:
        return f"{path!r} goes through a symlink loop or a /proc magic link"
    if code == errno.ENOSYS:
        return "this kernel has no openat2 (Linux 5.6 or later is needed to read files safely)"
    return f"cannot read {path!r}: {os.strerror(code)}"

