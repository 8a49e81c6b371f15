"""A workflow's or task's ``cache:`` block, as the loader checks it.

``cache: true`` or ``cache: {ttl: 7d, files: ["data/*.csv"], key_extra: "${inputs.v}"}``;
``cache: false`` on a task turns the workflow's default off for it. Plain data: the
key is computed at run time (``cache/key.py``), after substitution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gleitzeit_core.durations import parse_duration

CACHE_KEYS = ("enabled", "ttl", "files", "key_extra")
MAX_GLOBS = 100


@dataclass(frozen=True)
class CacheSpec:
    """Whether a task's results are reused, for how long, and what else goes into its key."""

    enabled: bool = True
    ttl: float | None = None  # seconds an entry is served; None: until `gleitzeit cache clear`
    files: tuple[str, ...] = ()  # globs relative to the workflow folder: their contents join the key
    key_extra: Any = None  # text (or list of texts) that joins the key, ${…} substituted

    def to_block(self) -> dict[str, Any]:
        """The block as a workflow file would write it (what ``read_cache`` reads back)."""
        block: dict[str, Any] = {"enabled": self.enabled}
        if self.ttl is not None:
            block["ttl"] = self.ttl
        if self.files:
            block["files"] = list(self.files)
        if self.key_extra is not None:
            block["key_extra"] = self.key_extra
        return block


def parse_ttl(value: Any) -> float | None:
    """``90`` (seconds), ``"90s"``, ``"30m"``, ``"12h"``, ``"7d"`` → seconds; None if not a positive duration."""
    if isinstance(value, bool):
        return None
    seconds = float(value) if isinstance(value, (int, float)) else (
        parse_duration(value) if isinstance(value, str) else None)
    return seconds if seconds is not None and 0 < seconds < float("inf") else None


def read_cache(block: Any, label: str) -> tuple[CacheSpec | None, list[tuple[str | None, str]]]:
    """The spec, and problems as (key in the block or None for the block itself, message)."""
    if isinstance(block, bool):
        return CacheSpec(enabled=block), []
    if not isinstance(block, dict):
        return None, [(None, f"{label}: 'cache' must be true, false or a mapping such as "
                             "{ttl: 7d, files: [\"data/*.csv\"]}")]
    problems: list[tuple[str | None, str]] = []
    for key in block:
        if key not in CACHE_KEYS:
            problems.append((key, f"{label}: unknown key {key!r} in 'cache'; known keys: {', '.join(CACHE_KEYS)}"))
    enabled = block.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(("enabled", f"{label}: cache 'enabled' must be true or false, got {enabled!r}"))
    ttl = None
    if block.get("ttl") is not None:
        ttl = parse_ttl(block["ttl"])
        if ttl is None:
            problems.append(("ttl", f"{label}: cache 'ttl' must be a positive duration such as 90s, 30m, 12h "
                                    f"or 7d, got {block['ttl']!r}"))
    files = _globs(block.get("files"), label, problems)
    extra = block.get("key_extra")
    if extra is not None and not (isinstance(extra, str) or
                                  (isinstance(extra, list) and all(isinstance(x, str) for x in extra))):
        problems.append(("key_extra", f"{label}: cache 'key_extra' must be text or a list of texts"))
    if problems:
        return None, problems
    return CacheSpec(enabled=bool(enabled), ttl=ttl, files=files, key_extra=extra), []


def _globs(value: Any, label: str, problems: list[tuple[str | None, str]]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(x, str) and x.strip() for x in items):
        problems.append(("files", f"{label}: cache 'files' must be a list of glob patterns such as "
                                  "[\"data/*.csv\"]"))
        return ()
    if len(items) > MAX_GLOBS:
        problems.append(("files", f"{label}: cache 'files' has {len(items)} patterns; at most {MAX_GLOBS}"))
        return ()
    for pattern in items:
        if pattern.startswith(("/", "~")) or ".." in pattern.replace("\\", "/").split("/"):
            problems.append(("files", f"{label}: cache 'files' pattern {pattern!r} must stay inside the "
                                      "workflow folder: a relative pattern without '..'"))
    return tuple(items)


def effective(task: CacheSpec | None, workflow: CacheSpec | None) -> tuple[CacheSpec | None, bool]:
    """The spec that applies to a task and whether the task asked itself (not only the workflow).

    A task's own block wins (``cache: false`` turns the default off); a task block without
    ``ttl`` takes the workflow's."""
    if task is not None:
        if not task.enabled:
            return None, True
        if task.ttl is None and workflow is not None and workflow.ttl is not None:
            task = CacheSpec(True, workflow.ttl, task.files, task.key_extra)
        return task, True
    if workflow is not None and workflow.enabled:
        return workflow, False
    return None, False
