"""``${Task Name.result.path}`` references: parsing, and substitution into parameters.

A reference names a task (by name or id, the longest known one wins, so names
may contain spaces and dots), then ``result`` (the task's whole result object),
then dict keys / list indices (``items.0`` and ``items[0]`` both work);
``[*]`` maps the rest of the path over a list (``${Map.result[*].result}``; a
null element stays null). *Variables* (``${item}``, ``${item_index}`` inside a
``for_each`` task) are names bound by the caller, read the same way but without
``result``. ``$${`` is a literal ``${``.

Substitution keeps the value's type when a string is exactly one reference.
Inside a longer string, strings go in as text and other values as compact
JSON, except in *code parameters* (the method descriptor's ``codeParams``):
there every value goes in as a literal of that language, so data can never
turn into code.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gleitzeit_core.errors import SubstitutionError
from gleitzeit_core.workflow.limits import MAX_NAME_CHARS, MAX_REFERENCE_CHARS, MAX_VALUE_DEPTH, depth_exceeds

# `$${` (escape) or `${...}`; an unterminated `${` is caught as group "open".
_TOKEN = re.compile(r"\$\$\{|\$\{(?P<inner>[^}]*)\}|(?P<open>\$\{)")
_INDEX = re.compile(r"-?\d+")
_SEGMENT = re.compile(r"\.([^.\[]*)|\[([^\]]*)\]?")
_JSON_SEPARATORS = (",", ":")
#: lists/dicts up to this many characters of JSON are written into code as displays
SMALL_LITERAL = 4096
#: ``Reference.task`` of ``${inputs.…}`` and ``${secrets.…}``: no task may be named so (the loader
#: refuses these names), so the scheduler keeps their values beside the task results.
INPUTS, SECRETS = "inputs", "secrets"
#: The first words a reference cannot start with when it names a task.
RESERVED = (INPUTS, SECRETS, "env")
_SCOPE = re.compile(r"(inputs|secrets|env)(?=$|[.\[])")
ENV_REFUSED = ("the environment is not read by workflows (a resume would read other values, and a token "
               "in it would be stored): list a sensitive value under 'secrets:' and write ${secrets.NAME}, "
               "or declare an input and pass --param NAME=\"$NAME\" (docs/inputs.md)")


class ReferenceSyntaxError(ValueError):
    """A ``${…}`` that cannot be parsed; the message says what to write instead."""

    def __init__(self, text: str, message: str, task_hint: str | None = None):
        super().__init__(message)
        self.text = text
        self.message = message
        self.task_hint = task_hint  # what the user probably meant as task name


class _All:
    """The ``[*]`` path segment: the rest of the path, for every element of a list."""

    def __repr__(self) -> str:
        return "[*]"


ALL = _All()
Segment = str | int | _All


@dataclass(frozen=True)
class Reference:
    text: str  # the whole "${…}" as written
    task: str  # key of the task whose result it reads
    path: tuple[Segment, ...]  # segments after `result`; int = `[n]`, ALL = `[*]`


def find_references(value: Any, task_names: Mapping[str, str], variables: Collection[str] = ()) -> list[Reference]:
    """All task references in ``value`` (any depth of dicts/lists, values only);
    references to ``variables`` are checked but not listed.

    Raises ``ReferenceSyntaxError`` for the first malformed one; the loader uses
    ``scan_string`` to collect every problem instead.
    """
    found: list[Reference] = []
    if isinstance(value, (dict, list)):
        texts = [container[key] for container, key in reference_sites(value)]
    else:
        texts = [value] if isinstance(value, str) else []
    for text in texts:
        for item in scan_string(text, task_names, variables):
            if isinstance(item, ReferenceSyntaxError):
                raise item
            found.append(item)
    return found


def scan_string(text: str, task_names: Mapping[str, str],
                variables: Collection[str] = ()) -> list[Reference | ReferenceSyntaxError]:
    """Task references of one string, each either parsed or the reason it is not
    (a well-formed reference to one of ``variables`` is left out)."""
    if "${" not in text:
        return []
    out: list[Reference | ReferenceSyntaxError] = []
    for m in _TOKEN.finditer(text):
        if m.group("open") is not None:
            out.append(ReferenceSyntaxError(
                text[m.start():m.start() + 40], "unterminated '${': close it with '}', or write '$${' for a literal '${'"))
        elif m.group("inner") is not None:
            parsed = _parse_or_error(m.group(0), m.group("inner"), task_names, variables)
            if parsed is not None:
                out.append(parsed)
    return out


def substitute(
    value: Any,
    *,
    results: Mapping[str, Any],
    task_names: Mapping[str, str],
    code_params: Mapping[str, str] = {},
    unavailable: Mapping[str, str] = {},
    variables: Mapping[str, Any] = {},
) -> Any:
    """A copy of ``value`` with every reference replaced; raises ``SubstitutionError``.

    ``code_params`` (param name -> language) applies to the top-level keys of a
    dict ``value`` (the task's params). ``variables``: name -> value of
    ``${name…}`` references that read no task (a map item).
    """
    resolver = _Resolver(results, task_names, unavailable, variables)
    if isinstance(value, dict) and code_params:
        return {
            k: _walk(v, resolver, code_params.get(k) if isinstance(k, str) else None)
            for k, v in value.items()
        }
    return _walk(value, resolver, None)


def run_values(workflow: Any) -> dict[str, Any]:
    """What ``${inputs.…}`` and ``${secrets.…}`` read before dispatch: the run's input values,
    and ``***`` for each secret (its value is filled in at dispatch: ``secret_fill``)."""
    return {INPUTS: dict(workflow.input_values or {}), SECRETS: {s.name: "***" for s in workflow.secrets}}


def literal(value: Any, language: str) -> str:
    """Source text that evaluates to ``value`` in ``language`` (JSON for non-Python).

    A Python list or dict longer than ``SMALL_LITERAL`` characters of JSON
    becomes ``__import__('json').loads('…')``: one string constant, built by the
    C encoder. Written out as a display instead, a 10 MB table cost a Python
    call per element here and a huge constant-folding job in the provider's
    compiler (MemoryError under the sandbox's limit); this way it costs what
    passing it through ``context`` costs. Small ones stay readable displays.
    """
    if language == "python":
        if isinstance(value, (list, dict)):
            text = json.dumps(value)
            if len(text) > SMALL_LITERAL:
                return f"__import__('json').loads({text!r})"
        return _python_literal(value)
    return json.dumps(value, ensure_ascii=False)


def _python_literal(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if value is None or isinstance(value, (str, bool, int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_python_literal(k)}: {_python_literal(v)}" for k, v in value.items()) + "}"
    raise SubstitutionError(f"cannot write a {type(value).__name__} value as Python source")


def _walk(value: Any, resolver: _Resolver, language: str | None) -> Any:
    if isinstance(value, str):
        return _substitute_string(value, resolver, language) if "${" in value else value
    if isinstance(value, dict):
        return {k: _walk(v, resolver, language) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, resolver, language) for v in value]
    return value


def _substitute_string(text: str, resolver: _Resolver, language: str | None) -> Any:
    m = _TOKEN.fullmatch(text)
    if m is not None and m.group("inner") is not None and language is None:
        return resolver.resolve(m.group(0), m.group("inner"))

    def replace(m: re.Match[str]) -> str:
        if m.group("open") is not None:
            raise SubstitutionError(f"unterminated '${{' in {text[:60]!r}; write '$${{' for a literal '${{'")
        if m.group("inner") is None:
            return "${"
        resolved = resolver.resolve(m.group(0), m.group("inner"))
        if language is not None:
            return literal(resolved, language)
        if isinstance(resolved, str):
            return resolved
        return json.dumps(resolved, ensure_ascii=False, separators=_JSON_SEPARATORS)

    return _TOKEN.sub(replace, text)


class _Resolver:
    def __init__(self, results: Mapping[str, Any], task_names: Mapping[str, str], unavailable: Mapping[str, str],
                 variables: Mapping[str, Any]):
        self.results = results
        self.task_names = task_names
        self.unavailable = unavailable
        self.variables = variables

    def resolve(self, text: str, inner: str) -> Any:
        try:
            var = _variable(inner, self.variables)
            if var is not None:
                return self._checked(text, _follow(text, self.variables[var[0]], _parse_path(text, var[1]), var[0]))
            ref = parse_reference(text, inner, self.task_names)
        except ReferenceSyntaxError as e:
            raise SubstitutionError(f"{text}: {e.message}") from None
        if ref.task in self.unavailable:
            raise SubstitutionError(
                f"{text}: task '{ref.task}' {self.unavailable[ref.task]}, so it has no result to read")
        if ref.task not in self.results:
            raise SubstitutionError(f"{text}: task '{ref.task}' has no result yet; does this task depend on it?")
        return self._checked(text, _follow(text, self.results[ref.task], ref.path))

    @staticmethod
    def _checked(text: str, value: Any) -> Any:
        if isinstance(value, (dict, list)) and depth_exceeds(value, MAX_VALUE_DEPTH):
            raise SubstitutionError(f"{text}: the value nests lists/mappings more than {MAX_VALUE_DEPTH} levels "
                                    "deep, too deep to pass on; flatten it in the task that produces it")
        return value


def _follow(text: str, value: Any, path: tuple[Segment, ...], where: str = "result") -> Any:
    for n, seg in enumerate(path):
        if isinstance(seg, _All):
            if not isinstance(value, list):
                raise SubstitutionError(f"{text}: {where} is {_type_name(value)} {_short(value)}, not a list, "
                                        "so [*] cannot map over it")
            rest = path[n + 1:]
            return [None if v is None else _follow(text, v, rest, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            key = seg if isinstance(seg, str) else str(seg)
            if key not in value:
                raise SubstitutionError(f"{text}: {where} has no key {key!r}; its keys are: {_keys(value)}")
            value = value[key]
            where = f"{where}.{key}"
        elif isinstance(value, list):
            index = seg if isinstance(seg, int) else _as_index(seg)
            if index is None:
                raise SubstitutionError(f"{text}: {where} is a list; use a number, not {seg!r} (length {len(value)})")
            if not -len(value) <= index < len(value):
                raise SubstitutionError(f"{text}: index {index} is out of range for {where} (a list of length {len(value)})")
            value = value[index]
            where = f"{where}[{index}]"
        else:
            raise SubstitutionError(
                f"{text}: {where} is {_type_name(value)} {_short(value)}, so it has no field {seg!r}")
    return value


def parse_reference(text: str, inner: str, task_names: Mapping[str, str]) -> Reference:
    """Parse the inside of ``${…}``; raises ``ReferenceSyntaxError``. Linear in ``inner``."""
    if len(inner) > MAX_REFERENCE_CHARS:
        raise ReferenceSyntaxError(text[:40] + "…", f"reference of {len(inner)} characters: at most "
                                   f"{MAX_REFERENCE_CHARS} are allowed; read a shorter path")
    if not inner.strip():
        raise ReferenceSyntaxError(text, "empty reference: write ${Task Name.result}")
    scope = _SCOPE.match(inner)
    if scope is not None:
        return _scoped(text, scope.group(1), inner[scope.end():])
    task, rest = _match_task(inner, task_names)
    if task is None:
        guess = inner.split(".result", 1)[0]
        raise ReferenceSyntaxError(text, f"no task named {guess!r}", task_hint=guess)
    if rest != "result" and not rest.startswith(("result.", "result[")):
        name = inner[: len(inner) - len(rest) - 1] if rest else inner
        hint = f"${{{name}.result.{rest}}}" if rest else f"${{{name}.result}}"
        raise ReferenceSyntaxError(text, f"after the task name comes 'result' (the task's result object): write {hint}")
    return Reference(text, task_names[task], _parse_path(text, rest[len("result"):]))


def _scoped(text: str, scope: str, tail: str) -> Reference:
    """``${inputs.…}`` (a path into the run's inputs) or ``${secrets.NAME}``; ``${env.…}`` is refused."""
    if scope == "env":
        raise ReferenceSyntaxError(text, ENV_REFUSED)
    if scope == SECRETS:
        if not tail.startswith(".") or not tail[1:] or any(c in tail[1:] for c in ".[]"):
            raise ReferenceSyntaxError(text, "write ${secrets.NAME} for a secret listed under 'secrets:'")
        return Reference(text, SECRETS, (tail[1:],))
    return Reference(text, INPUTS, _parse_path(text, tail))


def _parse_or_error(text: str, inner: str, task_names: Mapping[str, str],
                    variables: Collection[str] = ()) -> Reference | ReferenceSyntaxError | None:
    try:
        var = _variable(inner, variables)
        if var is not None:
            _parse_path(text, var[1])
            return None
        return parse_reference(text, inner, task_names)
    except ReferenceSyntaxError as e:
        return e


def _variable(inner: str, variables: Collection[str]) -> tuple[str, str] | None:
    """(variable, the path after it) when ``inner`` reads one of ``variables``."""
    for name in variables:
        if inner == name or (inner.startswith(name) and inner[len(name)] in ".["):
            return name, inner[len(name):]
    return None


def _match_task(inner: str, task_names: Mapping[str, str]) -> tuple[str | None, str]:
    """Longest known task name/id that is the whole of ``inner`` or followed by '.'.

    A name followed by ``.result`` beats a longer one that is not, so a task
    named "a.result" does not shadow "a". Returns (name, rest after the dot).
    Only prefixes up to ``MAX_NAME_CHARS`` are tried, so the cost per reference
    is bounded by the name cap, not by the reference's length.
    """
    fallback: int | None = None
    cut = len(inner) if len(inner) <= MAX_NAME_CHARS else inner.rfind(".", 0, MAX_NAME_CHARS + 1)
    while cut >= 0:
        if inner[:cut] in task_names:
            if inner.startswith("result", cut + 1) and (
                    len(inner) == cut + 7 or inner[cut + 7] in ".["):
                return inner[:cut], inner[cut + 1:]
            if fallback is None:
                fallback = cut
        cut = inner.rfind(".", 0, cut)
    if fallback is None:
        return None, ""
    return inner[:fallback], inner[fallback + 1:]


def _parse_path(text: str, tail: str) -> tuple[Segment, ...]:
    """``.a.0[1].b[*]`` -> ("a", "0", 1, "b", ALL); strings that look like numbers index lists. Linear."""
    path: list[Segment] = []
    i = 0
    while i < len(tail):
        m = _SEGMENT.match(tail, i)
        if m is None:
            raise ReferenceSyntaxError(text, f"unexpected {tail[i]!r} in the path; separate fields with '.'")
        seg, index = m.group(1), m.group(2)
        if seg is not None:
            if not seg:
                raise ReferenceSyntaxError(text, "empty path segment (two dots, or a trailing dot)")
            path.append(seg)
        elif m.group(0) == "[*]":
            path.append(ALL)
        elif not m.group(0).endswith("]") or not _INDEX.fullmatch(index):
            raise ReferenceSyntaxError(text, "list index must be a number in brackets, like items[0], "
                                             "or [*] for every element")
        else:
            path.append(int(index))
        i = m.end()
    return tuple(path)


def _as_index(seg: str) -> int | None:
    return int(seg) if _INDEX.fullmatch(seg) else None


def _keys(d: dict) -> str:
    keys = list(d)
    shown = ", ".join(repr(k) for k in keys[:20])
    return (shown + f", … ({len(keys)} keys)") if len(keys) > 20 else (shown or "(none: it is empty)")


def _type_name(value: Any) -> str:
    return {type(None): "null", bool: "a bool", int: "a number", float: "a number", str: "a string"}.get(
        type(value), f"a {type(value).__name__}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def split_reference(inner: str, task_names: Mapping[str, str]) -> tuple[str | None, str]:
    """The task name (or id) a ``${…}``'s inside starts with, and what follows its dot.

    The same matching substitution uses, for rewriters of references (the predecessor format).
    """
    return _match_task(inner, task_names)


def rewrite_references(text: str, rewrite: Callable[[str], str | None]) -> str:
    """``text`` with the inside of each ``${…}`` replaced by ``rewrite(inside)`` (None: unchanged).

    ``$${`` escapes and unterminated ``${`` stay as written.
    """
    def replace(m: re.Match[str]) -> str:
        inner = m.group("inner")
        new = rewrite(inner) if inner is not None else None
        return m.group(0) if new is None else "${" + new + "}"

    return _TOKEN.sub(replace, text)


def reference_sites(container: dict | list) -> list[tuple[dict | list, Any]]:
    """(container, key) of every string holding a ``${``, at any depth (values only), in order.
    A list, not a generator: the loader asks this of every task's parameters several times,
    and most have none (a generator per container cost ~2.5x as much)."""
    found: list[tuple[dict | list, Any]] = []
    _collect_sites(container, found)
    return found


def _collect_sites(container: dict | list, found: list[tuple[dict | list, Any]]) -> None:
    items: Iterable[tuple[Any, Any]] = container.items() if isinstance(container, dict) else enumerate(container)
    for k, v in items:
        if isinstance(v, str):
            if "${" in v:
                found.append((container, k))
        elif isinstance(v, (dict, list)):
            _collect_sites(v, found)

