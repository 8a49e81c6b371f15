"""Block-style YAML read line by line, with positions: the shape of almost every workflow file.

libyaml hands the loader one Python event object per scalar and container start and end
(1.85 million for a 100,000-task file, ~2.4 s before any value is built). Most workflow
files, and everything ``yaml.safe_dump`` writes, use a small part of YAML: block mappings
and lists, one ``key: value`` or ``- item`` per line, plain or one-line quoted scalars,
``[]`` and ``{}``. ``read`` takes exactly that part, a line and one regular expression at a
time, and gives the same values and positions as the event builder (``source._Builder``),
scalars typed by the same YAML 1.1 table. Anything else — a tab, a non-ASCII or control
character, a comment after a value, anchors, tags, flow collections with items, block or
multi-line scalars, a null value, a duplicate or non-text key, a bad number, nesting deeper
than the limit, any syntax error — makes it return None, and the event builder reads the
file, with its messages: this reader never reports a problem itself.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gleitzeit_core.workflow.limits import MAX_FILE_DEPTH
from gleitzeit_core.workflow.positions import COL_BITS, COL_MAX, PAIR_BITS, PackedPairs

#: Positions of mapping entries and of list items by container id, as ``source.Marks`` keeps them.
MapTable = dict[int, tuple[int, Any]]
SeqTable = dict[int, tuple[int, Any]]
_OUTSIDE = re.compile(r"[^\x20-\x7e\n]")  # tabs, CR, controls, non-ASCII: the event builder's
_START = r"A-Za-z0-9_$./(~+^\\"  # what a plain scalar or key may start with here: no indicator
#: One line: indent, ``- `` of a list item, ``key:`` (a key has no space and no ``:`` in it),
#: the value (plain: no ``#``, ``:`` only before a non-space, no space at its end; quoted on one
#: line -- one over several is folded, which the event builder does; ``[]`` or ``{}``), then
#: whatever is left, which must be nothing (or all of a comment line).
_LINE = re.compile(
    rf"^( *)(- +)?(([{_START}][{_START}-]*):(?: +|$))?"
    rf"""([{_START}](?:[^#:\s]+|:(?=[^\s#:])| +(?=[^\s#]))*|'(?:[^'\n]|'')*'|"[^"\\\n]*"|\[\]|\{{\}})? *(.*)$""",
    re.MULTILINE)
_CHUNK = 1 << 16
_MAX_KEY = 1024  # YAML's bound on an implicit key: libyaml reads a longer one as a syntax error


class _NotBlock(Exception):
    """The text leaves the part of YAML this reader takes."""


def read(text: str, plain: Callable[[str], Any]) -> tuple[Any, MapTable, SeqTable] | None:
    """(data, mapping positions, list positions), or None when the event builder must read
    ``text``. ``plain`` types a plain scalar (raises ValueError for a number no provider
    could take)."""
    if not text.isascii() or _OUTSIDE.search(text):
        return None
    try:
        return _read(_lines(text), plain)
    except (_NotBlock, ValueError):
        return None


def _lines(text: str) -> Iterator[tuple[str, ...]]:
    """Each line's parts, ``_CHUNK`` characters of lines at a time: all at once, the tuples
    of a 100,000-task file held 300 MB."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start + _CHUNK)
        end = len(text) if end < 0 else end
        yield from _LINE.findall(text, start, end)
        start = end + 1


def _read(lines: Iterable[tuple[str, ...]], plain: Callable[[str], Any]) -> tuple[Any, MapTable, SeqTable]:
    """Lines in, containers out, with a stack of the open ones: each
    [indent, container, positions, key waiting for its value, that key's position, is a list,
    is a list at its key's own indent, its own position]."""
    maps: MapTable = {}
    seqs: SeqTable = {}
    stack: list[list[Any]] = []

    def scalar(text: str, pos: int) -> Any:
        first = text[0]
        if first == "'":
            return text[1:-1].replace("''", "'")
        if first == '"':
            return text[1:-1]
        if first == "[":
            value: Any = []
            seqs[id(value)] = (pos, [])
            return value
        if first == "{":
            value = {}
            maps[id(value)] = (pos, {})
            return value
        return plain(text)

    def open_(frame: list[Any], indent: int, pos: int, is_list: bool) -> list[Any]:
        """A container at ``indent`` starting at ``pos``, as the value of ``frame``'s waiting key
        or an item of ``frame``'s list (the root when ``frame`` is None)."""
        if len(stack) >= MAX_FILE_DEPTH - 2:
            raise _NotBlock  # the event builder refuses it, with its message
        container: Any = [] if is_list else {}
        positions = array("q")  # a list's item positions; a mapping's key and value positions, in turn
        if is_list:
            seqs[id(container)] = (pos, positions)
        if frame is not None:
            if frame[5]:
                frame[1].append(container)
                frame[2].append(pos)
            else:
                frame[1][frame[3]] = container
                frame[2].extend((frame[4], pos))
                frame[3] = None
        new = [indent, container, positions, None, 0, is_list, frame is not None and frame[0] == indent, pos]
        stack.append(new)
        return new

    def close(frame: list[Any]) -> None:
        """A mapping's positions, once all its keys are read (see ``PackedPairs``)."""
        if frame[3] is not None:
            raise _NotBlock  # a key without a value (a null): libyaml places it at the next token
        if not frame[5]:
            container, words = frame[1], frame[2]
            if len(container) <= PackedPairs.LIMIT:
                names = tuple(container)
                table: Any = PackedPairs(key_tuples.setdefault(names, names), words)
            else:
                table = {k: words[2 * i] << PAIR_BITS | words[2 * i + 1] for i, k in enumerate(container)}
            maps[id(container)] = (frame[7], table)

    keys: dict[str, str] = {}  # each key text once: 100,000 tasks repeat a few keys
    key_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}  # and a few key sequences

    def add_key(frame: list[Any], key: str, row: int, column: int, value: str, value_column: int) -> None:
        typed = keys.get(key)
        if typed is None:
            typed = plain(key)
            if type(typed) is not str or len(key) > _MAX_KEY:
                raise _NotBlock  # a key YAML reads as a non-text value: the event builder says so
            keys[key] = typed
        if typed in frame[1]:
            raise _NotBlock  # written twice: the event builder says where
        key_pos = row << COL_BITS | (column + 1)
        if value:
            value_pos = row << COL_BITS | min(value_column + 1, COL_MAX)
            frame[1][typed] = scalar(value, value_pos)
            frame[2].extend((key_pos, value_pos))
        else:
            frame[3], frame[4] = typed, key_pos  # the next line opens its value

    for row, (spaces, dash, key_part, key, value, rest) in enumerate(lines, 1):
        if rest or not (dash or key_part):
            if not (dash or key_part or value) and (not rest or rest[0] == "#"):
                continue  # a blank or comment line
            raise _NotBlock
        column = len(spaces)
        if column > COL_MAX:
            raise _NotBlock
        while stack and stack[-1][0] > column:
            close(stack.pop())
        top = stack[-1] if stack else None
        if dash:
            if top is not None and top[5] and top[0] == column:
                frame = top
            elif top is not None and not top[5] and top[3] is not None and top[0] <= column:
                frame = open_(top, column, row << COL_BITS | (column + 1), True)
            elif top is None and column == 0:
                frame = open_(None, column, row << COL_BITS | (column + 1), True)
            else:
                raise _NotBlock
            item = column + len(dash)
            if key_part:  # a mapping starts in the item
                inner = open_(frame, item, row << COL_BITS | (item + 1), False)
                add_key(inner, key, row, item, value, item + len(key_part))
            elif value:
                pos = row << COL_BITS | (item + 1)
                frame[1].append(scalar(value, pos))
                frame[2].append(pos)
            else:
                raise _NotBlock
            continue
        if top is not None and top[5] and top[6] and top[0] == column:
            close(stack.pop())  # a list at its key's indent ends at the mapping's next key
            top = stack[-1]
        if top is not None and not top[5] and top[0] == column and top[3] is None:
            frame = top
        elif top is not None and not top[5] and top[3] is not None and top[0] < column:
            frame = open_(top, column, row << COL_BITS | (column + 1), False)
        elif top is None and column == 0:
            frame = open_(None, column, row << COL_BITS | (column + 1), False)
        else:
            raise _NotBlock
        add_key(frame, key, row, column, value, column + len(key_part))
    if not stack:
        raise _NotBlock
    root = stack[0][1]
    while stack:
        close(stack.pop())
    return root, maps, seqs
