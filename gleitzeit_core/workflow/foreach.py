"""``for_each``: what a map task says (its item source, width, parallelism and
failure policy), read from the workflow file, and the glob item source.

A map task expands at run time into one child per item (scheduler/fanout.py).
Items are identified by their index in the list; the list is frozen in the
store when the task expands, so a resumed run sees the same items.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Protocol

from gleitzeit_core.workflow.model import SourcePos

#: the variables a map task's parameters may read
ITEM, ITEM_INDEX = "item", "item_index"
VARIABLES = (ITEM, ITEM_INDEX)
#: items per map unless the runner's ``execution.max_map_items`` says otherwise
DEFAULT_MAX_ITEMS = 10_000
MAP_KEYS = ("for_each", "max_parallel", "on_item_failure")
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")


@dataclass(frozen=True)
class FailurePolicy:
    """How many failed items a map tolerates and still completes.

    ``fail`` (the default) is ``max_failures=0``; ``continue`` is no bound;
    ``"10%"`` is a fraction of the items."""

    max_failures: int | None = 0
    max_fraction: float | None = None

    @property
    def fail_fast(self) -> bool:
        """After the first failed item no new item starts (running ones finish)."""
        return self.max_failures == 0 and self.max_fraction is None

    def tolerates(self, failed: int, total: int) -> bool:
        if self.max_fraction is not None:
            return failed <= math.floor(self.max_fraction * total)
        return self.max_failures is None or failed <= self.max_failures

    def describe(self) -> str:
        if self.max_fraction is not None:
            return f"{self.max_fraction * 100:g}%"
        if self.max_failures is None:
            return "continue"
        return "fail" if self.max_failures == 0 else f"{{max_failures: {self.max_failures}}}"


@dataclass(frozen=True)
class ForEach:
    """``source`` is a literal list, or a ``${…}`` string naming a list; ``glob`` a
    pattern relative to the workflow folder (then ``source`` is None)."""

    source: Any = None
    glob: str | None = None
    max_parallel: int | None = None
    on_failure: FailurePolicy = FailurePolicy()
    pos: SourcePos | None = None


class _Checker(Protocol):
    """The loader's field readers this module uses (loader._Checker)."""

    marks: Any

    def report(self, where: SourcePos, message: str) -> None: ...

    def integer(self, mapping: dict, key: str, label: str, *, low: int, high: int | None = None) -> int | None: ...


def read(checker: _Checker, raw: dict, label: str) -> ForEach | None:
    """The map part of a task, or None when it has no ``for_each`` (problems reported)."""
    if "for_each" not in raw:
        for key in ("max_parallel", "on_item_failure"):
            if key in raw:
                checker.report(checker.marks.key(raw, key), f"{label}: '{key}' belongs to a task with 'for_each'")
        return None
    value, at = raw["for_each"], checker.marks.value(raw, "for_each")
    source, pattern = None, None
    if isinstance(value, dict):
        if set(value) != {"glob"} or not isinstance(value["glob"], str):
            checker.report(at, f"{label}: 'for_each' as a mapping is {{glob: \"data/**/*.csv\"}} (one key, text)")
            return None
        pattern = value["glob"]
        if problem := glob_problem(pattern):
            checker.report(checker.marks.value(value, "glob"), f"{label}: for_each glob {pattern!r}: {problem}")
            return None
    elif isinstance(value, list) or (isinstance(value, str) and value.strip().startswith("${")
                                     and value.strip().endswith("}")):
        source = value.strip() if isinstance(value, str) else value
    else:
        checker.report(at, f"{label}: 'for_each' must be a list, a reference to one such as "
                           f"\"${{List Files.result.result}}\", or {{glob: \"data/*.csv\"}}")
        return None
    parallel = checker.integer(raw, "max_parallel", label, low=1)
    policy = failure_policy(checker, raw, label)
    return ForEach(source=source, glob=pattern, max_parallel=parallel, on_failure=policy, pos=at)


def failure_policy(checker: _Checker, raw: dict, label: str) -> FailurePolicy:
    value = raw.get("on_item_failure", "fail")
    at = checker.marks.value(raw, "on_item_failure") if "on_item_failure" in raw else None
    if value == "fail":
        return FailurePolicy()
    if value == "continue":
        return FailurePolicy(max_failures=None)
    if isinstance(value, dict) and set(value) == {"max_failures"}:
        value = value["max_failures"]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return FailurePolicy(max_failures=value)
    if isinstance(value, str) and (m := _PERCENT.fullmatch(value)) and float(m.group(1)) <= 100:
        return FailurePolicy(max_failures=None, max_fraction=float(m.group(1)) / 100)
    assert at is not None
    checker.report(at, f"{label}: 'on_item_failure' must be fail, continue, {{max_failures: 3}} or a "
                       f"percentage such as \"10%\", got {value!r}")
    return FailurePolicy()


def glob_problem(pattern: str) -> str | None:
    """Why a glob pattern could reach outside the workflow folder, or None."""
    if not pattern.strip():
        return "empty pattern"
    if os.path.isabs(pattern) or pattern.startswith("~"):
        return "must be relative to the workflow folder"
    if ".." in re.split(r"[/\\]", pattern):
        return "'..' would leave the workflow folder"
    return None


class GlobTooWide(ValueError):
    pass


#: folder entries a glob looks at: expanding stays fast on any folder
MAX_SCAN = 200_000
_MAGIC = re.compile(r"[*?\[]")


def resolve_glob(pattern: str, base_dir: str, limit: int) -> list[str]:
    """Files matching ``pattern`` below ``base_dir``, sorted, as paths relative to it.

    ``**`` matches any number of folders, none included (so ``data/**/*.csv`` also
    finds ``data/a.csv``); hidden entries and anything whose real path leaves
    ``base_dir`` (symbolic links) are left out. Raises GlobTooWide past ``limit``
    matches or ``MAX_SCAN`` entries looked at."""
    base = os.path.realpath(base_dir)
    segments = [p for p in pattern.replace(os.sep, "/").split("/") if p not in ("", ".")]
    fixed = 0  # leading segments without wildcards: the walk starts below them
    while fixed < len(segments) - 1 and not _MAGIC.search(segments[fixed]):
        fixed += 1
    root = os.path.join(base, *segments[:fixed])
    found = scan(root, segments[fixed:], MAX_SCAN) if os.path.isdir(root) else []
    if found is None:
        raise GlobTooWide(f"{pattern!r} looks at more than {MAX_SCAN} folder entries")
    prefix = "/".join(segments[:fixed])
    out = []
    for rel in found:
        rel = f"{prefix}/{rel}" if prefix else rel
        if os.path.realpath(os.path.join(base, rel)).startswith(base + os.sep):
            out.append(rel)
    if len(out) > limit:
        raise GlobTooWide(f"{len(out)} files match {pattern!r}")
    return out


def scan(root: str, segments: list[str], max_entries: int) -> list[str] | None:
    """Files below ``root`` matching the glob ``segments`` (``**``: any number of folders, none
    too), sorted, relative to ``root``; None past ``max_entries`` entries. Symbolic links to
    folders are not followed and names starting with '.' are skipped, as ``glob`` does."""
    found, seen = [], 0
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        parts = [] if rel == "." else rel.split(os.sep)
        dirs[:] = [] if "**" not in segments and len(parts) >= len(segments) - 1 else \
            [d for d in dirs if not d.startswith(".")]
        seen += len(dirs) + len(files)
        if seen > max_entries:
            return None
        found += ["/".join(parts + [f]) for f in files if not f.startswith(".") and _matches(parts + [f], segments)]
    return sorted(found)


def _matches(parts: list[str], segments: list[str]) -> bool:
    """Whether path ``parts`` match glob ``segments``; linear in their product (no backtracking)."""
    reach = {0}  # how many parts the segments so far can have consumed
    for seg in segments:
        if seg == "**":
            reach = set(range(min(reach), len(parts) + 1)) if reach else set()
        else:
            reach = {i + 1 for i in reach if i < len(parts) and fnmatch.fnmatchcase(parts[i], seg)}
    return len(parts) in reach
