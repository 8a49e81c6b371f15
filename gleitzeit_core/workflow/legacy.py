"""The predecessor's workflow format ("Gleitzeit V4") in the canonical form, before validation.

Gleitzeit replaces an earlier tool whose users have workflow files. ``normalise``
rewrites the parsed tree in place — tasks named by their id, ``${T.response}``
references, ``type: batch`` workflows, paths relative to the current directory,
renamed and ignored keys — so the loader validates one format, and every later
problem still points at the line the user wrote (``Marks`` follows each rewrite).
Each kind of change is said once per file: a warning where the file does not mean
what it meant to the predecessor, a hint under ``-v`` where it does.
docs/migrating.md lists every form and what it becomes.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gleitzeit_core.errors import Problem
from gleitzeit_core.workflow.foreach import MAX_SCAN as MAX_BATCH_SCAN, scan
from gleitzeit_core.workflow.model import SourcePos, TaskSpec
from gleitzeit_core.workflow.refs import reference_sites, rewrite_references, split_reference
from gleitzeit_core.workflow.source import Marks

log = logging.getLogger("gleitzeit.workflow")

PYTHON = "python/execute"
#: The keys of a python/execute result object; anything else after ``.result.`` is the
#: predecessor's form, where ``.result`` was the script's ``result`` value itself.
PYTHON_RESULT_KEYS = frozenset({"result", "stdout", "stderr", "duration_ms"})
PYTHON_RENAMED = {"output": "stdout"}
IGNORED_TOP = ("version", "metadata", "tags", "priority", "protocol")
IGNORED_TASK = ("tags", "metadata")
_IGNORED_TASK = frozenset(IGNORED_TASK)
#: Keys of a batch ``template`` that belong to each task, not to its parameters.
TEMPLATE_TASK_KEYS = ("priority", "timeout", "retry", "dependencies", "sandbox")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"})
MAX_BATCH_FILES = 10_000
#: The predecessor's in-process stand-ins: nothing real answered them.
STUB_METHODS = frozenset({"mcp/tool.echo", "mcp/tool.add", "mcp/tool.multiply", "mcp/tool.concat",
                          "mcp/tools/list", "mcp/ping", "mcp/server_info"})
STUB_PROTOCOLS = frozenset({"echo/v1"})
_FIRST_SEGMENT = re.compile(r"[^.\[]*")


@dataclass
class Normalised:
    problems: list[Problem] = field(default_factory=list)
    #: Subtrees taken out of the tree, kept alive while loading so that no new
    #: container reuses their ``id`` and with it their recorded positions.
    retained: list[Any] = field(default_factory=list)
    #: A batch workflow that could not be expanded: it has no tasks to check further.
    no_tasks: bool = False


def normalise(data: Any, marks: Marks, base_dir: str | None, cwd: str | None = None) -> Normalised:
    """Rewrite ``data`` (the parsed workflow) into the canonical form; log what changed."""
    n = _Normaliser(marks, base_dir, os.getcwd() if cwd is None else cwd)
    if isinstance(data, dict):
        n.workflow(data)
    n.say()
    return n.out


def is_stub(task: TaskSpec) -> bool:
    return task.method in STUB_METHODS or task.protocol in STUB_PROTOCOLS


def stub_problem(tasks: Iterable[TaskSpec], where: str) -> Problem | None:
    """One line for every task that calls one of the predecessor's stub tools, or None."""
    stubs = [t for t in tasks if is_stub(t)]
    if not stubs:
        return None
    names = ", ".join(repr(t.name) for t in stubs[:3]) + (f" and {len(stubs) - 3} more" if len(stubs) > 3 else "")
    methods = sorted({t.method for t in stubs})
    many = len(methods) > 1
    return Problem(str(stubs[0].pos or where),
                   f"task{'s' * (len(stubs) > 1)} {names}: {', '.join(methods)} {'were' if many else 'was'} "
                   f"the predecessor's built-in stub tool{'s' * many}, with no server behind "
                   f"{'them' if many else 'it'}; "
                   f"Gleitzeit has none: register a real MCP server as a provider and call its tools as "
                   f"<name>/<tool> (docs/migrating.md, 'Stub tools')")


class _Normaliser:
    def __init__(self, marks: Marks, base_dir: str | None, cwd: str):
        self.marks = marks
        self.base = os.path.abspath(base_dir) if base_dir is not None else None
        self.cwd = os.path.abspath(cwd)
        self.out = Normalised()
        self.hints: dict[str, tuple[SourcePos, str, int]] = {}  # kind -> (first place, text, count)
        self.warnings: dict[str, tuple[SourcePos, str, int]] = {}
        self.conditional: set[str] = set()  # warning kinds said only in files of the predecessor's format
        self.ignored: list[str] = []
        self.ignored_at: SourcePos | None = None

    # -- workflow level ---------------------------------------------------------

    def workflow(self, data: dict) -> None:
        if data.get("type") == "batch" or ("batch" in data and "tasks" not in data):
            reported = len(self.out.problems)
            self.batch(data)
            self.out.no_tasks = len(self.out.problems) > reported
        self.rename(data, "max_parallel_tasks", "max_concurrent_tasks", "the workflow")
        if "wait_for_completion" in data:
            at = self.marks.key(data, "wait_for_completion")
            if data.pop("wait_for_completion") is False:
                self.warn("wait", at, "'wait_for_completion: false' is ignored: `gleitzeit run` waits for the run; "
                                      "start it in the background or use `gleitzeit workflow submit`")
            else:
                self.hint("wait", at, "'wait_for_completion: true' is what `gleitzeit run` does anyway")
        self.drop_ignored(data, IGNORED_TOP, "")
        tasks = data.get("tasks")
        if not isinstance(tasks, list):
            return
        for raw in tasks:
            if isinstance(raw, dict):
                self.task(raw)
        self.references([t for t in tasks if isinstance(t, dict)])

    def rename(self, mapping: dict, old: str, new: str, label: str) -> None:
        if old not in mapping:
            return
        if new in mapping:
            self.problem(self.marks.key(mapping, old), f"{label}: give either '{new}' or its old name '{old}', not both")
            return
        mapping[new] = mapping.pop(old)
        self.marks.move(mapping, new, mapping, old)
        self.hint(f"rename {old}", self.marks.key(mapping, old), f"'{old}' is read as '{new}'")

    def drop_ignored(self, mapping: dict, keys: tuple[str, ...], label: str) -> None:
        for key in [k for k in mapping if k in keys]:  # in the file's order
            self.ignored_at = self.ignored_at or self.marks.key(mapping, key)
            self.ignored.append(f"{label}{key}")
            self.out.retained.append(mapping.pop(key))

    # -- one task -----------------------------------------------------------------

    def task(self, raw: dict) -> None:
        if "name" not in raw and isinstance(raw.get("id"), str):
            raw["name"] = raw["id"]
            self.marks.move(raw, "name", raw, "id")
            self.hint("name", self.marks.of(raw), "tasks without 'name' are named by their 'id'")
        method, protocol = raw.get("method"), raw.get("protocol")
        if isinstance(method, str) and method and "/" not in method and isinstance(protocol, str) and "/" in protocol:
            raw["method"] = f"{protocol.partition('/')[0]}/{method}"
            self.hint("method", self.marks.value(raw, "method"),
                      f"method {method!r} of protocol {protocol!r} is read as {raw['method']!r}")
        if not _IGNORED_TASK.isdisjoint(raw):  # most tasks have none: no label, no list
            label = f"task {raw.get('name')!r}: " if isinstance(raw.get("name"), str) else "task: "
            self.drop_ignored(raw, IGNORED_TASK, label)
        key = "parameters" if "parameters" in raw else "params"
        params = raw.get(key)
        if isinstance(params, dict) and isinstance(raw.get("method"), str):
            self.params(params, raw["method"])

    def params(self, params: dict, method: str) -> None:
        if not method.startswith("llm/"):
            if method == PYTHON and "file" in params:
                self.resolve_path(params, "file", "file")
            return
        self.merge_paths(params, "files", "file_path")
        if method == "llm/vision":
            self.merge_paths(params, "image_paths", "image_path")
        if "batch_mode" in params:
            at = self.marks.key(params, "batch_mode")
            if params.pop("batch_mode"):
                self.warn("batch_mode", at, "'batch_mode: true' is ignored: all files and images of a task go into "
                                            "one call; for one task per file use 'type: batch' (docs/migrating.md)")
        for key in ("file_path", "image_path"):
            if key in params:
                self.resolve_path(params, key, key)

    def merge_paths(self, params: dict, old: str, new: str) -> None:
        """``image_paths: [a, b]`` is ``image_path: [a, b]`` (several images in one call)."""
        if old not in params:
            return
        more = params.pop(old)
        have = params.get(new)
        if isinstance(more, list) and (have is None or isinstance(have, (str, list))):
            merged = ([have] if isinstance(have, str) else list(have or [])) + more
            self.marks.copy(merged, more)
            params[new] = merged
            self.marks.move(params, new, params, old)
            self.hint(f"merge {old}", self.marks.key(params, old), f"'{old}' is read as '{new}' (a list of files)")
        else:
            params[old] = more  # not the predecessor's shape: the schema check names it

    # -- paths --------------------------------------------------------------------

    def resolve_path(self, container: dict | list, key: Any, what: str) -> None:
        """A relative path: the workflow folder first, then (the predecessor's rule) the current
        directory — and from there only to a file inside the workflow folder, given on as a path
        relative to that folder."""
        value = container[key]
        if isinstance(value, list):
            for i in range(len(value)):
                self.resolve_path(value, i, what)
            return
        if self.base is None or not isinstance(value, str) or not value or "${" in value:
            return
        if os.path.isabs(os.path.expanduser(value)):
            return
        at = self.marks.value(container, key)
        found = self.locate(value, at, what, os.path.exists)
        if found is not None and found != value:
            container[key] = found

    def locate(self, value: str, at: SourcePos, what: str, exists: Callable[[str], bool]) -> str | None:
        """``value`` relative to the workflow folder, or None (not found, or a problem was reported)."""
        assert self.base is not None
        if exists(os.path.join(self.base, value)):
            log.info("%s: %s %r: found in the workflow folder %s", at, what, value, self.base)
            return value
        in_cwd = os.path.join(self.cwd, value)
        if not exists(in_cwd):
            log.info("%s: %s %r: in neither the workflow folder %s nor the current directory %s",
                     at, what, value, self.base, self.cwd)
            return None
        rel = os.path.relpath(os.path.realpath(in_cwd), os.path.realpath(self.base))
        if rel == ".." or rel.startswith(".." + os.sep):
            self.problem(at, f"{what} {value!r} is not in the workflow folder {self.base}; it is in the current "
                             f"directory {self.cwd}, outside the folder a run may read: move it into the "
                             f"workflow folder or give a path relative to that folder")
            return None
        log.info("%s: %s %r: found relative to the current directory %s (the predecessor's rule), "
                 "read as %r in the workflow folder", at, what, value, self.cwd, rel)
        return rel

    # -- type: batch ------------------------------------------------------------

    def batch(self, data: dict) -> None:
        """``type: batch`` + ``batch: {directory, pattern}`` + ``template`` -> one ``for_each``
        task over ``{glob: <directory>/<pattern>}`` (docs/maps.md); the files are listed now
        only to report a folder with none, too many or links leading out."""
        where = self.marks.of(data)
        parts = {k: data.pop(k) for k in ("type", "batch", "template", "protocol") if k in data}
        self.out.retained.append(parts)
        if "tasks" in data:
            self.problem(self.marks.key(data, "tasks"),
                         "a batch workflow ('type: batch') has 'batch' and 'template' instead of 'tasks'")
            return
        batch, template = parts.get("batch"), parts.get("template")
        if not isinstance(batch, dict) or not isinstance(batch.get("directory"), str) or not batch["directory"]:
            self.problem(self.marks.value(data, "batch") if "batch" in parts else where,
                         "a batch workflow needs 'batch: {directory: <folder>, pattern: \"*.txt\"}'")
            return
        if not isinstance(template, dict) or not isinstance(template.get("method"), str):
            self.problem(self.marks.value(data, "template") if "template" in parts else where,
                         "a batch workflow needs a 'template' task with a 'method', such as 'llm/chat'")
            return
        pattern = batch.get("pattern", "*")
        if not isinstance(pattern, str) or not pattern or os.path.isabs(pattern) or ".." in pattern.split("/"):
            self.problem(self.marks.value(batch, "pattern"),
                         f"batch: 'pattern' must be a file pattern inside the directory, such as '*.txt', "
                         f"not {pattern!r}")
            return
        files = self.batch_files(batch, pattern)
        if files is None:
            return
        method = template["method"]
        images = all(os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES for f in files)
        task = self.batch_task(template, method, parts.get("protocol"), batch, images)
        task["for_each"] = {"glob": posixpath.join(batch["directory"].replace(os.sep, "/"), pattern)}
        self.marks.move(task, "for_each", batch, "directory")
        data["tasks"] = [task]
        self.marks.move(data["tasks"], 0, data, "template")
        self.marks.move(data, "tasks", data, "template")
        data.setdefault("name", f"Batch Processing ({len(files)} files)")
        self.hint("batch", where, f"'type: batch': one for_each task of {method} over the files matching "
                                  f"{pattern!r} in {batch['directory']!r} ({len(files)} now), in sorted order")

    def batch_files(self, batch: dict, pattern: str) -> list[str] | None:
        """The matching files (sorted, relative to the workflow folder), or None after a problem."""
        at = self.marks.value(batch, "directory")
        if self.base is None:
            self.problem(at, "a batch workflow must be loaded from a file: its directory is relative to it")
            return None
        reported = len(self.out.problems)
        directory = self.locate(batch["directory"], at, "batch directory", os.path.isdir)
        if directory is None:
            if len(self.out.problems) == reported:
                self.problem(at, f"batch directory {batch['directory']!r} not found in the workflow folder "
                                 f"{self.base} nor in the current directory {self.cwd}")
            return None
        batch["directory"] = directory
        found = scan(os.path.join(self.base, directory), pattern.split("/"), MAX_BATCH_SCAN)
        if found is None:
            self.problem(at, f"batch: {batch['directory']!r} holds more than {MAX_BATCH_SCAN} entries; "
                             f"point 'directory' at a smaller folder")
            return None
        base = os.path.realpath(self.base)
        files = [os.path.normpath(os.path.join(directory, f)) for f in found]
        inside = [f for f in files if os.path.realpath(os.path.join(self.base, f)).startswith(base + os.sep)]
        if len(inside) < len(files):
            self.warn("batch outside", at, f"batch: {len(files) - len(inside)} matching file(s) lead outside the "
                                           f"workflow folder (symbolic links) and were left out")
        if not inside:
            self.problem(at, f"batch: no files match {pattern!r} in {batch['directory']!r}; "
                             f"a batch workflow needs at least one")
            return None
        if len(inside) > MAX_BATCH_FILES:
            self.problem(at, f"batch: {len(inside)} files match {pattern!r}: at most {MAX_BATCH_FILES} are allowed")
            return None
        return inside

    def batch_task(self, template: dict, method: str, protocol: Any, batch: dict, images: bool) -> dict:
        """The template as a map task: each file's path (``${item}``) where the predecessor put it."""
        params: dict[str, Any] = {}
        for key in ("parameters", "params"):
            if isinstance(template.get(key), dict):
                params.update(template[key])
                self.marks.copy(params, template[key])
        extra = {k: v for k, v in template.items()
                 if k not in TEMPLATE_TASK_KEYS and k not in ("method", "name", "id", "parameters", "params")}
        params.update(extra)
        for k in extra:
            self.marks.move(params, k, template, k)
        task: dict[str, Any] = {"id": "process", "name": "Process files", "method": method, "parameters": params}
        task.update({k: template[k] for k in TEMPLATE_TASK_KEYS if k in template})
        self.marks.copy(task, template)
        if isinstance(protocol, str):
            task["protocol"] = protocol
        for k in ("id", "name", "parameters"):
            self.marks.move(task, k, template, "method")
        if method == PYTHON:
            context = params.get("context")
            context = dict(context) if isinstance(context, dict) else {}
            if isinstance(params.get("context"), dict):
                self.marks.copy(context, params["context"])
            context["file_path"] = "${item}"
            self.marks.move(context, "file_path", batch, "directory")
            params["context"] = context
        else:
            key = "image_path" if method == "llm/vision" and images else "file_path"
            params[key] = "${item}"
            self.marks.move(params, key, batch, "directory")
        return task

    # -- references ---------------------------------------------------------------

    def references(self, tasks: list[dict]) -> None:
        """``${T.response}`` -> ``${T.result.response}``: in the predecessor the root of a
        reference was the provider's result object; here ``result`` names it."""
        names: dict[str, str] = {}
        methods: dict[str, Any] = {}
        for raw in tasks:
            for kind in ("name", "id"):
                if isinstance(raw.get(kind), str):
                    names.setdefault(raw[kind], raw[kind])
                    methods.setdefault(raw[kind], raw.get("method"))
        for raw in tasks:
            params = raw.get("parameters", raw.get("params"))
            if not isinstance(params, (dict, list)):
                continue
            for container, key in reference_sites(params):
                at = self.marks.value(container, key)
                container[key] = rewrite_references(container[key], lambda inner: self.reference(inner, names, methods, at))

    def reference(self, inner: str, names: dict[str, str], methods: dict[str, Any], at: SourcePos) -> str | None:
        task, rest = split_reference(inner, names)
        if task is None:
            return None
        python = methods.get(task) == PYTHON
        first = _FIRST_SEGMENT.match(rest).group(0)  # type: ignore[union-attr]
        after = rest[len(first):]
        if first == "result":
            second = _FIRST_SEGMENT.match(after[1:]).group(0) if after.startswith(".") else None  # type: ignore[union-attr]
            if python and second is not None and second not in PYTHON_RESULT_KEYS:
                new = f"{task}.result.result{after}"
            else:
                if python and not after:
                    self.warn("python result", at, f"${{{inner}}} is the whole result object of a python/execute "
                                                   f"task (result, stdout, stderr, duration_ms); in the predecessor "
                                                   f"it was the script's `result` value: for that, write "
                                                   f"${{{task}.result.result}}", quiet_unless_legacy=True)
                return None
        elif not rest:
            new = f"{task}.result.result" if python else f"{task}.result"
        elif python and first in PYTHON_RENAMED:
            new = f"{task}.result.{PYTHON_RENAMED[first]}{after}"
        else:
            new = f"{task}.result.{rest}"
        self.hint("reference", at, f"references in the predecessor's form are read with '.result.': "
                                   f"${{{inner}}} as ${{{new}}}; write that form")
        return new

    # -- reporting ----------------------------------------------------------------

    def problem(self, where: SourcePos, message: str) -> None:
        self.out.problems.append(Problem(str(where), message))

    def hint(self, kind: str, where: SourcePos, text: str) -> None:
        first = self.hints.get(kind)
        self.hints[kind] = (first[0], first[1], first[2] + 1) if first else (where, text, 1)

    def warn(self, kind: str, where: SourcePos, text: str, *, quiet_unless_legacy: bool = False) -> None:
        first = self.warnings.get(kind)
        self.warnings[kind] = (first[0], first[1], first[2] + 1) if first else (where, text, 1)
        if quiet_unless_legacy:
            self.conditional.add(kind)

    def say(self) -> None:
        """Once per file and kind: hints at INFO (shown with -v), warnings at WARNING."""
        legacy = bool(self.hints or self.ignored or self.out.problems or set(self.warnings) - self.conditional)
        for where, text, count in self.hints.values():
            log.info("%s: %s%s", where, text, _more(count))
        if self.ignored:
            log.warning("%s: keys of the predecessor's format that have no effect here, ignored: %s "
                        "(docs/migrating.md)", self.ignored_at, ", ".join(self.ignored))
        for kind, (where, text, count) in self.warnings.items():
            if legacy or kind not in self.conditional:
                log.warning("%s: %s%s", where, text, _more(count))


def _more(count: int) -> str:
    return f" ({count - 1} more like it in this file)" if count > 1 else ""
