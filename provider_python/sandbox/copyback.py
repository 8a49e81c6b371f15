"""Copy one execution's workspace changes (an overlay's upper layer, see quota.py) into the real
workspace, after the execution's process tree is dead.

The upper layer was written by hostile code, so: nothing in either tree is ever followed (every
step is an `openat` relative to a directory fd, `O_NOFOLLOW`; symlinks are recreated as symlinks,
never opened); the copy runs with the sandbox's identity (uid dropped, no capabilities), so it
can write nothing the task itself could not have written; files are recreated, never linked,
so nothing outside the workspace can be reached through a hard link; set-id bits are dropped;
sparse files stay sparse; and the plan is measured first, so hard links (one inode, many names)
cannot turn a 1 MiB upper layer into gigabytes on disk. Device nodes other than whiteouts,
fifos and sockets are not copied; extended attributes are not copied.

Overlay semantics handled: a whiteout (character device 0:0) deletes the name; an opaque
directory replaces what was there; any other entry replaces the name's previous content.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass, field

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Plan:
    """What the copy would do, measured before doing it."""

    opaque: set[str] = field(default_factory=set)  # directories (relative paths) that replace
    data_bytes: int = 0  # allocated bytes of every regular file name (hard links counted per name)
    entries: int = 0


def is_empty(upper: str) -> bool:
    """Whether the upper layer holds no entry (the task changed nothing), or was never mounted
    (the execution failed before its root). An empty upper layer cannot be over the quota."""
    try:
        with os.scandir(upper) as it:
            return next(it, None) is None
    except (FileNotFoundError, NotADirectoryError):
        return True


def measure(upper: str) -> Plan:
    """Walk the upper layer (run with privileges: `trusted.` attributes need them; only reads,
    follows nothing)."""
    plan = Plan()
    for folder, dirs, files in os.walk(upper):  # never descends into symlinks
        plan.entries += len(dirs) + len(files)
        rel = os.path.relpath(folder, upper)
        for name in dirs:
            if _is_opaque(os.path.join(folder, name)):
                plan.opaque.add(os.path.normpath(os.path.join(rel, name)))
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if stat.S_ISREG(st.st_mode):
                plan.data_bytes += st.st_blocks * 512
    return plan


def _is_opaque(path: str) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def open_dir(path: str) -> int:
    """A directory fd for `merge`, opened before `child.become_sandbox` (the folders above the upper
    layer and the workspace need not be the sandbox user's to traverse)."""
    return os.open(path, _DIR_FLAGS)


def merge(src: int, dst: int, plan: Plan) -> list[str]:
    """Apply the upper layer (`src`) to the workspace (`dst`); the problems met (each entry is
    tried on its own)."""
    problems: list[str] = []
    _merge_dir(src, dst, ".", plan, problems)
    return problems


def _merge_dir(src: int, dst: int, rel: str, plan: Plan, problems: list[str]) -> None:
    with os.scandir(src) as it:
        names = [e.name for e in it]
    for name in names:
        path = os.path.normpath(os.path.join(rel, name))
        try:
            st = os.stat(name, dir_fd=src, follow_symlinks=False)
            mode = st.st_mode
            if stat.S_ISCHR(mode) and st.st_rdev == 0:
                _remove(dst, name)
            elif stat.S_ISDIR(mode):
                _copy_dir(src, dst, name, st, path, plan, problems)
            elif stat.S_ISREG(mode):
                _copy_file(src, dst, name, st)
            elif stat.S_ISLNK(mode):
                link = os.readlink(name, dir_fd=src)
                _remove(dst, name)
                os.symlink(link, name, dir_fd=dst)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")


def _copy_dir(src: int, dst: int, name: str, st: os.stat_result, path: str, plan: Plan, problems: list[str]) -> None:
    if path in plan.opaque:
        _remove(dst, name)
    try:
        os.mkdir(name, 0o700, dir_fd=dst)
    except FileExistsError:
        if not stat.S_ISDIR(os.stat(name, dir_fd=dst, follow_symlinks=False).st_mode):
            _remove(dst, name)
            os.mkdir(name, 0o700, dir_fd=dst)
    if stat.S_IMODE(st.st_mode) & 0o500 != 0o500:
        os.chmod(name, 0o700, dir_fd=src)  # ours (the task's): the copy must be able to list it
    sub_src = os.open(name, _DIR_FLAGS, dir_fd=src)
    try:
        sub_dst = os.open(name, _DIR_FLAGS, dir_fd=dst)
        try:
            os.fchmod(sub_dst, 0o700)
            _merge_dir(sub_src, sub_dst, path, plan, problems)
            os.fchmod(sub_dst, stat.S_IMODE(st.st_mode) & 0o777)  # after filling: it may be read-only
            os.utime(sub_dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(sub_dst)
    finally:
        os.close(sub_src)


def _copy_file(src: int, dst: int, name: str, st: os.stat_result) -> None:
    if not st.st_mode & stat.S_IRUSR:
        os.chmod(name, 0o600, dir_fd=src)  # a regular file of the task's (lstat above; nothing runs now)
    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
    try:
        _remove(dst, name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fout = os.open(name, flags, 0o600, dir_fd=dst)
        except FileExistsError:  # another execution of the run copied the same name meanwhile
            _remove(dst, name)
            fout = os.open(name, flags, 0o600, dir_fd=dst)
        try:
            _copy_data(fin, fout, st.st_size)
            os.fchmod(fout, stat.S_IMODE(st.st_mode) & 0o777)
            os.utime(fout, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_data(fin: int, fout: int, size: int) -> None:
    """Only the data extents: a sparse file stays sparse (its holes cost the quota nothing)."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fin, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                break  # only a hole is left
            raise
        end = os.lseek(fin, start, os.SEEK_HOLE)
        os.lseek(fout, start, os.SEEK_SET)
        while start < end:
            sent = os.sendfile(fout, fin, start, end - start)
            if sent == 0:
                break
            start += sent
        pos = end
    os.ftruncate(fout, size)


def _remove(dirfd: int, name: str) -> None:
    """Delete `name` in `dirfd`, whatever it is; a directory with everything below it."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)
