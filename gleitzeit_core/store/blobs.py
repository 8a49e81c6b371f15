"""Blobs: values too big to keep inline in a record, stored once per run under
their content hash. ``digest`` names them; ``BlobFolder`` keeps them as files
(the SQLite backend's storage, beside the database file).

A blob is written before the record that points at it, and deleted after the
run's records, so no record ever names a missing blob; a crash between the two
leaves at most an unreferenced file that goes when its run is deleted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import anyio

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def digest(data: bytes) -> str:
    """The content address of ``data``: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_name(run_id: str, digest_: str) -> None:
    """Run ids and digests become path parts and keys: refuse anything else."""
    if not _RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise ValueError(f"not a run id: {run_id!r}")
    if not _DIGEST.fullmatch(digest_):
        raise ValueError(f"not a blob digest: {digest_!r}")


class BlobFolder:
    """``<root>/<run_id>/<hex>``: folders 0700, files 0600 (the store's own data)."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, run_id: str, digest_: str) -> Path:
        check_name(run_id, digest_)
        return self.root / run_id / digest_.split(":", 1)[1]

    async def put(self, run_id: str, digest_: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._put, self._path(run_id, digest_), data)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        if path.exists():
            return  # content-addressed: already there means already right
        path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the whole blob or none

    async def get(self, run_id: str, digest_: str) -> bytes | None:
        return await anyio.to_thread.run_sync(self._get, self._path(run_id, digest_))

    @staticmethod
    def _get(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    async def delete_run(self, run_id: str) -> None:
        check_name(run_id, "sha256:" + "0" * 64)
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(self.root / run_id, ignore_errors=True))
