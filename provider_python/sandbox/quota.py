"""The per-task disk quota on the run's workspace (issue 14, case 8).

RLIMIT_FSIZE bounds one file, not a task. So the task does not write the workspace itself: it
sees it through an overlay whose lower layer is the real workspace and whose upper layer, where
every change lands, lives on a tmpfs of `disk_mb` MiB (and a proportional number of inodes).
Past the quota a write fails with ENOSPC inside the task and the execution is reported as
"disk quota of N MiB exceeded". Once the task's process tree is dead its supervisor copies the
upper layer into the real workspace (`copyback.merge`) with the sandbox's identity; an execution
over its quota leaves the workspace untouched.

Why a tmpfs and not a quota'd loop image or filesystem quotas: it needs no loop devices, no mkfs
per task (tens of ms), no quota-enabled host filesystem, works in rootless containers, costs one
mount; its price is that a task's unflushed changes are RAM (or swap) until the task ends, which
is why the limit is the runner's to set (docs/security.md, "Disk quota").
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any, Mapping

from provider_python.sandbox.syscalls import MS_BIND, MS_NODEV, MS_NOSUID, MS_REMOUNT, bind_idmapped, mount

INODES_PER_MB = 256  # one file per 4 KiB of quota: a million empty files is a quota breach too
# Full copy-ups (metacopy off: the data is in the upper layer, never only in the workspace), no
# index; `userxattr` (works in rootless containers too) implies no directory redirects: renaming a
# directory the task did not create fails with EXDEV (`shutil.move` copies instead). The upper
# layer is then plain files, whiteouts and opaque markers, which `copyback` understands.
OVERLAY_OPTIONS = "lowerdir=lower,upperdir=upper,workdir=work,userxattr,index=off,metacopy=off,xino=off"


@dataclass(frozen=True)
class Quota:
    """Where one execution's workspace changes are held: `folder` is an empty host directory
    outside the sandbox root (only mounted on inside the execution's mount namespace)."""

    workspace: str
    folder: str
    mb: int

    @property
    def upper(self) -> str:
        return os.path.join(self.folder, "upper")

    @property
    def lower(self) -> str:
        """The real workspace, bound (idmapped where the sandbox's writes are): the copy-back's target."""
        return os.path.join(self.folder, "lower")

    @classmethod
    def of(cls, req: Mapping[str, Any]) -> "Quota | None":
        """The request's quota, or None where the layer is off or the runner set none (disk_mb 0):
        the workspace is then bound directly."""
        if "diskquota" not in req["layers"] or "mountns" not in req["layers"] or not req["disk_mb"]:
            return None
        return cls(req["workspace"], req["quota_dir"], int(req["disk_mb"]))

    @property
    def inodes(self) -> int:
        return max(self.mb * INODES_PER_MB, 64)

    def mount(self, target: str, userns_fd: int | None) -> None:
        """Mount the quota'd view of the workspace on `target` (an existing directory)."""
        mount("tmpfs", self.folder, "tmpfs", MS_NOSUID | MS_NODEV,
              f"mode=0700,size={self.mb}m,nr_inodes={self.inodes}")
        for name in ("lower", "upper", "work"):
            os.mkdir(os.path.join(self.folder, name), 0o700)
        _bind_lower(self.workspace, self.lower, userns_fd)
        st = os.stat(self.lower)  # the workspace's owner as the sandbox sees it (idmapped)
        os.chown(self.upper, st.st_uid, st.st_gid)  # the merged root's attributes are the upper's
        os.chmod(self.upper, stat.S_IMODE(st.st_mode))
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:  # relative layer paths: the task's mountinfo does not show where they live
            os.chdir(self.folder)
            mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, OVERLAY_OPTIONS)
        finally:
            os.fchdir(cwd)
            os.close(cwd)

    def exceeded(self) -> bool:
        """Whether the execution ran out of space or inodes (a write failed with ENOSPC)."""
        st = os.statvfs(self.folder)
        return st.f_bfree == 0 or st.f_ffree == 0

    def message(self) -> str:
        return f"disk quota of {self.mb} MiB exceeded (the workspace is left as it was before the task)"


def _bind_lower(source: str, target: str, userns_fd: int | None) -> None:
    if userns_fd is not None:
        try:
            bind_idmapped(source, target, userns_fd)
            return
        except OSError:
            pass  # a filesystem without idmapped mounts: plain, writable as on disk (the owner was chowned)
    mount(source, target, None, MS_BIND)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
