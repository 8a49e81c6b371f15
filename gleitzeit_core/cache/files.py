"""The contents of the files a task reads, as digests for its cache key.

Files are read exactly as the providers read them (``gleitzeit_sdk.confined``): beneath
the workflow folder or a ``sandbox.read`` folder, resolved by the kernel (no ``..``, no
symlink out), never Gleitzeit's own state, and -- when the engine runs as root -- by a
child that became the sandbox's user. So the engine never reads a file as root that the
task could not read: such a file makes the task uncacheable instead (fail closed).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from typing import Any

from gleitzeit_sdk.confined import FileRefused, Roots, read_confined

from gleitzeit_core.cache.key import sha256

#: a bigger file makes the task uncacheable (hashing it would hold it in memory)
MAX_FILE_BYTES = 256 * 1024 * 1024
#: more files than this (all globs together) make the task uncacheable
MAX_FILES = 10_000


class NotCacheable(Exception):
    """Why a part of a task's key cannot be computed; the task then runs uncached."""


def roots_for(workflow_dir: str | None, sandbox: Mapping[str, Any] | None, private: Sequence[str]) -> Roots:
    return Roots.of({"workflowDir": workflow_dir} if workflow_dir else {}, {"sandbox": sandbox or {}}, private)


def file_digests(params: Mapping[str, Any], file_params: Sequence[str], globs: Sequence[str],
                 roots: Roots, items: Sequence[str] = ()) -> dict[str, Any]:
    """{"params": {param: {path: digest}}, "globs": {pattern: {path: digest}}}, and
    {"item": {path: digest}} for a map item that is a file the task reads (a glob's match)."""
    by_param: dict[str, dict[str, str]] = {}
    for name in file_params:
        value = params.get(name)
        if value is None:
            continue
        paths = [value] if isinstance(value, str) else value
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise NotCacheable(f"parameter {name!r} names files, but is not a path or a list of paths")
        by_param[name] = {p: _digest(p, roots) for p in paths}
    by_glob: dict[str, dict[str, str]] = {}
    count = sum(len(v) for v in by_param.values())
    for pattern in globs:
        if not roots.workflow_dir:
            raise NotCacheable(f"cache.files {pattern!r} needs a workflow folder (the workflow was not loaded "
                               "from a file)")
        matched = sorted(glob.glob(pattern, root_dir=roots.workflow_dir, recursive=True))
        files = [m for m in matched if not os.path.isdir(os.path.join(roots.workflow_dir, m))]
        count += len(files)
        if count > MAX_FILES:
            raise NotCacheable(f"cache.files match more than {MAX_FILES} files")
        by_glob[pattern] = {m: _digest(m, roots) for m in files}
    out: dict[str, Any] = {"params": by_param, "globs": by_glob}
    if items:
        out["item"] = {p: _digest(p, roots) for p in items}
    return out


def _digest(path: str, roots: Roots) -> str:
    try:
        return sha256(read_confined(path, roots, MAX_FILE_BYTES))
    except FileRefused as exc:
        raise NotCacheable(f"cannot hash a file it reads: {exc}") from None
