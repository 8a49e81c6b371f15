"""Find processes by a marker in their command line: how tests prove nothing was left behind."""

from __future__ import annotations

import os
import time
import uuid


def marker() -> str:
    return f"gz-test-{uuid.uuid4().hex[:12]}"


def pids_with(mark: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if mark.encode() in cmd and state != b"Z":
            found.append(int(entry))
    return found


def wait_gone(mark: str, timeout: float = 5.0) -> list[int]:
    """Pids still alive after ``timeout`` (empty when everything is gone)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        left = pids_with(mark)
        if not left:
            return []
        time.sleep(0.05)
    return pids_with(mark)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def descendants(root: int) -> set[int]:
    """All live descendants of ``root`` (by parent pid), found in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found
