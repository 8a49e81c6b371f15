"""Workflow text (YAML or JSON) -> plain Python values plus where each came from.

The validator needs a line and column for every key and value it complains
about, which ``yaml.safe_load`` throws away. So values are built here from
libyaml's parse events, recording positions in a side table keyed by
container identity. JSON has no positions; its problems name
the file only (messages also name the task and key, so they stay findable).
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode

from gleitzeit_core.errors import Problem
from gleitzeit_core.workflow import yaml_block
from gleitzeit_core.workflow.limits import MAX_ALIAS_VALUES, MAX_FILE_DEPTH, depth_exceeds
from gleitzeit_core.workflow.model import SourcePos
from gleitzeit_core.workflow.positions import COL_BITS as _COL_BITS
from gleitzeit_core.workflow.positions import COL_MAX as _COL_MAX
from gleitzeit_core.workflow.positions import PAIR_BITS as _PAIR_BITS
from gleitzeit_core.workflow.positions import VALUE_MASK as _VALUE_MASK
from gleitzeit_core.workflow.positions import PackedPairs
from gleitzeit_core.workflow.positions import pack as _pack
from gleitzeit_sdk.jsonlimits import MAX_INT_DIGITS  # the protocol's limit: a file holds only sendable integers

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_STR, _SEQ, _MAP, _MERGE = (_TAG + t for t in ("str", "seq", "map", "merge"))
_NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP = (_TAG + t for t in ("null", "bool", "int", "float", "timestamp"))
_NO_KEY, _MERGE_KEY, _SKIP_KEY = object(), object(), object()  # states of a mapping frame
_Pos = int  # positions.py: one int per position, one per mapping entry


class Marks:
    """Positions of mapping keys/values and sequence items, looked up by container."""

    def __init__(self, file: str):
        self.file = file
        self._nowhere = SourcePos(file)  # one for every value without a position (all of JSON's)
        self._maps: dict[int, tuple[_Pos, Any]] = {}  # id → (where, key → key pos << 64 | value pos: a dict or PackedPairs)
        self._seqs: dict[int, tuple[_Pos, Any]] = {}  # id → (where, item positions: a list or an array)

    def of(self, container: Any) -> SourcePos:
        entry = self._maps.get(id(container)) or self._seqs.get(id(container))
        return self._pos(entry[0] if entry else None)

    def key(self, mapping: dict, key: Any) -> SourcePos:
        entry = self._maps.get(id(mapping))
        if entry is None or key not in entry[1]:
            return self.of(mapping)
        return self._pos(entry[1][key] >> _PAIR_BITS)

    def value(self, container: dict | list, key: Any) -> SourcePos:
        """Where ``container[key]`` starts; the container itself if unknown."""
        if isinstance(container, dict):
            entry = self._maps.get(id(container))
            if entry is not None and key in entry[1]:
                return self._pos(entry[1][key] & _VALUE_MASK)
        else:
            seq = self._seqs.get(id(container))
            if seq is not None and 0 <= key < len(seq[1]):
                return self._pos(seq[1][key])
        return self.of(container)

    def copy(self, new: dict | list, old: dict | list) -> None:
        """``new`` (built from ``old`` by a rewrite) is reported where ``old`` was written."""
        entry = (self._maps if isinstance(old, dict) else self._seqs).get(id(old))
        if entry is not None and isinstance(new, dict) == isinstance(old, dict):
            table: dict = self._maps if isinstance(new, dict) else self._seqs
            table[id(new)] = (entry[0], _editable(entry[1]))

    def move(self, container: dict | list, key: Any, source: dict | list, source_key: Any) -> None:
        """``container[key]`` (placed by a rewrite) is reported where ``source[source_key]`` was written."""
        pos = self.value(source, source_key)
        if pos.line is None:
            return
        at = _pack(pos.line, pos.column or 1)
        table: dict = self._maps if isinstance(container, dict) else self._seqs
        entry = table.get(id(container))
        positions = _editable(entry[1]) if entry is not None else {} if table is self._maps else []
        table[id(container)] = (entry[0] if entry is not None else at, positions)
        if isinstance(container, dict):
            positions[key] = at << _PAIR_BITS | at
        else:
            positions.extend([at] * (key + 1 - len(positions)))
            positions[key] = at

    def _pos(self, pos: _Pos | None) -> SourcePos:
        if pos is None:
            return self._nowhere
        return SourcePos(self.file, pos >> _COL_BITS, pos & _COL_MAX)


def _editable(positions: Any) -> Any:
    """A fresh dict or list of ``positions`` (which may be a read-only ``PackedPairs`` or an array)."""
    if isinstance(positions, PackedPairs):
        return positions.as_dict()
    return dict(positions) if isinstance(positions, dict) else list(positions)


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Pause the cyclic GC while building a large tree of fresh objects.

    Loading allocates millions of objects that all stay alive; the collector
    would rescan them over and over (a 50,000-task file loads ~5x faster
    without it). Nothing cyclic is created, so nothing is lost.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse(text: str, file: str, fmt: str) -> tuple[Any, Marks, list[Problem]]:
    """``fmt`` is "yaml" or "json". Returns (data, marks, problems)."""
    marks = Marks(file)
    if fmt == "json":
        data, problems = _parse_json(text, file)
        return data, marks, problems
    scalars = _Scalars()
    block = yaml_block.read(text, scalars.plain)
    if block is not None:  # the common block-style file, read without libyaml's events
        data, marks._maps, marks._seqs = block
        return data, marks, []
    builder = _Builder(text, marks, scalars)
    data = builder.build()
    return data, marks, builder.problems


def _yaml_problem(e: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    where = SourcePos(file, mark.line + 1, mark.column + 1) if mark else SourcePos(file)
    what = " ".join(p for p in (e.context, e.problem) if p)
    return Problem(str(where), f"YAML syntax error: {what}; check the indentation and quoting here")


def _parse_json(text: str, file: str) -> tuple[Any, list[Problem]]:
    duplicates: list[str] = []

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)  # C speed; a duplicate shows as a shorter dict, then the slow walk names it
        if len(out) != len(pairs):
            seen: set[str] = set()
            duplicates.extend(k for k, _ in pairs if k in seen or seen.add(k))
        return out

    numbers: list[str] = []

    def bad_number(message: str) -> None:
        numbers.append(message)

    def parse_int(text: str) -> int | None:
        try:
            return _bounded_int(text, int)
        except _BadNumber as e:
            return bad_number(str(e))

    def parse_float(text: str) -> float | None:
        try:
            return _finite(float(text), text)
        except _BadNumber as e:
            return bad_number(str(e))

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates, parse_int=parse_int, parse_float=parse_float,
                          parse_constant=parse_float)
    except json.JSONDecodeError as e:
        return None, [Problem(str(SourcePos(file, e.lineno, e.colno)), f"JSON syntax error: {e.msg}")]
    except RecursionError:  # the decoder's own stack guard, far beyond MAX_FILE_DEPTH
        return None, [Problem(file, _TOO_DEEP)]
    if depth_exceeds(data, MAX_FILE_DEPTH):
        return None, [Problem(file, _TOO_DEEP)]
    return data, [Problem(file, f"duplicate key {k!r}: the later value would silently win; remove one")
                  for k in duplicates] + [Problem(file, message) for message in numbers]


_TOO_DEEP = (f"mappings and lists nest more than {MAX_FILE_DEPTH} levels deep: "
             "a workflow is not that deep; flatten it")


class _Refused(Exception):
    """Input the builder stops at instead of expanding it (too deep, too many aliased values)."""

    def __init__(self, event: Any, message: str):
        super().__init__(message)
        self.event, self.message = event, message


class _Builder:
    """libyaml events -> values, straight (no node tree: twice as fast on big files).

    Values are JSON-compatible: timestamps stay text. Anchors/aliases share one
    value, but every later walk (validation, substitution, storing) visits it once
    per alias, so the values aliases add are counted and bounded (``MAX_ALIAS_VALUES``,
    "billion laughs"), and so is the nesting depth, aliases included; merge keys
    (``<<``) work.
    """

    def __init__(self, text: str, marks: Marks, scalars: "_Scalars"):
        self.marks = marks
        self.problems: list[Problem] = []
        self._loader = _Loader(text)
        self._scalars = scalars
        self._anchors: dict[str, tuple[Any, int, int]] = {}  # name -> (value, values in it, height)
        self._alias_values = 0
        self._open: set[str] = set()

    def build(self) -> Any:
        try:
            return self._run()
        except yaml.MarkedYAMLError as e:
            self.problems.append(_yaml_problem(e, self.marks.file))
            return None
        except _Refused as e:
            self._problem(e.event, e.message)
            return None
        except yaml.YAMLError as e:  # e.g. a control character: the message says where
            self.problems.append(Problem(self.marks.file, f"YAML error: {' '.join(str(e).split())}"))
            return None
        finally:
            self._loader.dispose()

    def _run(self) -> Any:
        get_event = self._loader.get_event
        # [container, positions, pending key, key pos, merges, pos, anchor, values, child height]
        stack: list[list[Any]] = []
        root: Any = None
        documents = 0
        plain = self._scalars.cache
        while (event := get_event()) is not None:
            kind = type(event)
            if kind is ScalarEvent:
                # inlined for the common plain scalar (most of a big file's events): ~2x faster
                value = plain.get(event.value, _NO_KEY) if event.tag is None and event.implicit[0] else _NO_KEY
                if value is _NO_KEY:
                    value = self._scalar(event)
                mark = event.start_mark
                pos = (mark.line + 1) << _COL_BITS | min(mark.column + 1, _COL_MAX)
                size, height = 1, 0
                if event.anchor:
                    self._anchors[event.anchor] = (value, 1, 0)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                is_map = kind is MappingStartEvent
                if event.tag not in (None, "!", _MAP if is_map else _SEQ):
                    self._problem(event, f"unsupported YAML tag {event.tag!r}: use a plain "
                                         f"{'mapping' if is_map else 'list'}")
                if len(stack) >= MAX_FILE_DEPTH:
                    raise _Refused(event, _TOO_DEEP)
                container: Any = {} if is_map else []
                if event.anchor:
                    self._open.add(event.anchor)
                stack.append([container, {} if is_map else [], _NO_KEY, None, None, _pos(event), event.anchor, 1, 0])
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = stack.pop()
                value, pos, size, height = frame[0], frame[5], frame[7], frame[8] + 1
                if frame[4]:
                    self._merge(frame)
                table = self.marks._maps if kind is MappingEndEvent else self.marks._seqs
                table[id(value)] = (pos, frame[1])
                if frame[6]:
                    self._open.discard(frame[6])
                    self._anchors[frame[6]] = (value, size, height)
            elif kind is AliasEvent:
                pos = _pos(event)
                value, size, height = None, 1, 0
                if event.anchor in self._open:
                    self._problem(event, "this alias refers to a mapping or list that contains it: "
                                         "a workflow must be a tree")
                elif event.anchor not in self._anchors:
                    self._problem(event, f"unknown alias *{event.anchor}: define &{event.anchor} before using it")
                else:
                    value, size, height = self._anchors[event.anchor]
                    self._count_alias(event, size, height + len(stack))
            elif kind is DocumentStartEvent:
                documents += 1
                if documents == 2:
                    self._problem(event, "a second YAML document ('---'): put the whole workflow in one document")
                continue
            else:
                continue
            if not stack:
                root = value if documents == 1 else root
                continue
            parent = stack[-1]
            parent[7] += size
            if height > parent[8]:
                parent[8] = height
            container, key = parent[0], parent[2]
            if type(container) is list:
                container.append(value)
                parent[1].append(pos)
            elif key is _NO_KEY and type(value) is str and value != "<<":
                parent[2], parent[3] = value, pos  # a plain text key
            elif type(key) is str and key not in container:
                container[key] = value
                parent[1][key] = parent[3] << _PAIR_BITS | pos
                parent[2] = _NO_KEY
            else:  # merge keys, keys that are not text, duplicates
                self._place(parent, event, value, pos)
        return root

    def _count_alias(self, event: AliasEvent, size: int, depth: int) -> None:
        self._alias_values += size
        if self._alias_values > MAX_ALIAS_VALUES:
            raise _Refused(event, f"YAML aliases expand to more than {MAX_ALIAS_VALUES:,} values (each *alias "
                                  "counts as a copy of its &anchor): write the values out, or alias less")
        if depth > MAX_FILE_DEPTH:
            raise _Refused(event, _TOO_DEEP + " (counting what this alias inserts)")

    def _place(self, frame: list[Any], event: Any, value: Any, pos: _Pos) -> None:
        container = frame[0]
        if type(container) is list:
            container.append(value)
            frame[1].append(pos)
        elif frame[2] is _NO_KEY:
            frame[3] = pos
            if type(value) is str:
                is_merge = value == "<<" and type(event) is ScalarEvent and event.tag is None and event.implicit[0]
                frame[2] = _MERGE_KEY if is_merge else value
            elif type(event) is ScalarEvent:
                shown = "null" if value is None else json.dumps(value)
                self._problem(event, f"key {event.value!r} is read by YAML as {shown}, not as text: "
                                     f"quote it ('{event.value}')")
                frame[2] = event.value
            else:
                self._problem(event, "a mapping key must be plain text")
                frame[2] = _SKIP_KEY
        else:
            key = frame[2]
            frame[2] = _NO_KEY
            if key is _MERGE_KEY:
                frame[4] = (frame[4] or []) + [(value, event)]
            elif key is not _SKIP_KEY:
                if key in container:
                    self.problems.append(Problem(
                        str(self.marks._pos(frame[3])),
                        f"duplicate key {key!r} (first at line {frame[1][key] >> _PAIR_BITS >> _COL_BITS}): "
                        "the later value would silently win; remove one"))
                container[key] = value
                frame[1][key] = frame[3] << _PAIR_BITS | pos

    def _merge(self, frame: list[Any]) -> None:
        """``<<: *base`` / ``<<: [*a, *b]``: keys written here win, then earlier sources."""
        container, positions = frame[0], frame[1]
        for source, event in frame[4]:
            for src in source if isinstance(source, list) else [source]:
                if not isinstance(src, dict):
                    self._problem(event, "'<<' (merge) needs a mapping or a list of mappings")
                    continue
                src_positions = self.marks._maps.get(id(src), (None, {}))[1]
                for k, v in src.items():
                    if k not in container:
                        container[k] = v
                        if k in src_positions:
                            positions[k] = src_positions[k]

    def _scalar(self, event: ScalarEvent) -> Any:
        text, tag = event.value, event.tag
        try:
            if tag is None and event.implicit[0]:  # plain scalar: YAML 1.1 guesses the type
                return self._scalars.plain(text)
            if tag is None or tag == "!":
                return text
            construct = self._scalars.construct.get(tag)
            if construct is None:
                self._problem(event, f"unsupported YAML tag {tag!r}: use plain text, numbers, lists and mappings")
                return text
            return construct(text)
        except _BadNumber as e:
            self._problem(event, str(e))
            return None

    def _problem(self, event: Any, message: str) -> None:
        self.problems.append(Problem(str(self.marks._pos(_pos(event))), message))


class _Scalars:
    """YAML 1.1 scalar types as PyYAML's SafeLoader reads them (yes/no booleans, 0o and 0x
    integers, sexagesimals, ...), numbers bounded; one table for both YAML readers."""

    def __init__(self) -> None:
        self.cache: dict[str, Any] = {}  # plain scalar text -> value; keys repeat a lot
        resolver = yaml.resolver.Resolver()  # the resolver CSafeLoader uses
        self._resolve = resolver.resolve
        # it looks a type up by the first character: text starting otherwise is text (task names)
        implicit = resolver.yaml_implicit_resolvers
        self._typed_first = None if None in implicit or resolver.yaml_path_resolvers else frozenset(implicit)
        constructor = yaml.constructor.SafeConstructor()
        self.construct: dict[str, Callable[[str], Any]] = {
            _NULL: lambda text: None,
            _BOOL: lambda text: constructor.bool_values[text.lower()],
            _INT: lambda text: _bounded_int(text, lambda t: constructor.construct_yaml_int(ScalarNode(_INT, t))),
            _FLOAT: lambda text: _finite(constructor.construct_yaml_float(ScalarNode(_FLOAT, text)), text),
            _TIMESTAMP: str,
            _STR: str,
            _MERGE: str,
            _TAG + "value": str,
        }

    def plain(self, text: str) -> Any:
        """The value of a plain (unquoted, untagged) scalar; raises ``_BadNumber``."""
        value = self.cache.get(text, _NO_KEY)
        if value is _NO_KEY:
            if text and self._typed_first is not None and text[0] not in self._typed_first:
                value = text
            else:
                value = self.construct[self._resolve(ScalarNode, text, (True, False))](text)
            self.cache[text] = value
        return value


class _BadNumber(ValueError):
    """A number no provider could receive: too many digits, or not finite."""


def _bounded_int(text: str, construct: Callable[[str], int]) -> int:
    if len(text) <= MAX_INT_DIGITS:  # the common case: no digit count needed
        return construct(text)
    digits = sum(c.isdigit() for c in text)
    if digits > MAX_INT_DIGITS:  # also keeps int() below Python's 4300-digit limit
        raise _BadNumber(f"an integer of {digits} digits: at most {MAX_INT_DIGITS}; quote it if it is text")
    return construct(text)


def _finite(value: float, text: str) -> float:
    if not math.isfinite(value):
        raise _BadNumber(f"{text[:40]!r} is not a finite number (JSON, and so every provider, has no "
                         "NaN or infinity); quote it if it is text")
    return value


def _pos(event: Any) -> _Pos:
    mark = event.start_mark
    return _pack(mark.line + 1, mark.column + 1)
