"""``when:`` conditions: CEL expressions over variables, never over pasted text.

A condition is compiled by cel-expr-python (Google's CEL-C++ runtime, see
docs/conditions.md for why this one) with every variable declared, so results
(often LLM output) reach it only as values: ``") || true || ("`` in a result is
a string, never syntax. The library is imported on the first condition, so a
workflow without ``when:`` never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: variables every condition may read; inside a for_each map also ``item`` and ``item_index``
VARIABLES = ("tasks", "inputs")
MAP_VARIABLES = ("item", "item_index")
MAX_EXPRESSION_CHARS = 4096
_INT64 = (-(2**63), 2**63 - 1)

# A CEL string literal (so names inside one are not taken for references), or
# `tasks.Name` / `tasks["Name"]` / `inputs.name` / `inputs["name"]`.
_LITERAL = (r"[rRbB]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''"
            r"|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')")
_NAMED = re.compile(
    rf"(?P<lit>{_LITERAL})|(?<![\w.])(?P<var>tasks|inputs)\s*"
    r"(?:\.\s*(?P<ident>[A-Za-z_]\w*)|\[\s*(?:\"(?P<dq>[^\"\\\n]*)\"|'(?P<sq>[^'\\\n]*)')\s*\])")
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+): ")


class ConditionError(Exception):
    """A condition that does not compile, does not evaluate, or is not a boolean.

    ``line``/``column`` are 1-based within the expression, when the library said."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Name:
    """A literal name a condition reads: ``tasks["Check"]`` → ("tasks", "Check", offset)."""

    variable: str
    name: str
    offset: int  # where the reference starts in the expression


def named(text: str) -> Iterator[Name]:
    """Task and input names a condition names literally (dynamic keys are checked when it runs)."""
    for m in _NAMED.finditer(text):
        if m.group("var"):
            name = next(g for g in (m.group("ident"), m.group("dq"), m.group("sq")) if g is not None)
            yield Name(m.group("var"), name, m.start())


def check(text: str, variables: Iterable[str] = VARIABLES) -> None:
    """Compile ``text`` with ``variables`` declared; raises ConditionError (syntax, an
    undeclared variable, a result type that can never be a boolean)."""
    _compiled(text, tuple(sorted(variables)))


def reads_item(text: str) -> bool:
    """Whether a map task's condition reads ``item``/``item_index``: such a condition is
    decided for each item (skipping that item), any other for the map as a whole."""
    try:
        check(text, VARIABLES)
        return False
    except ConditionError:
        try:
            check(text, VARIABLES + MAP_VARIABLES)
            return True
        except ConditionError:
            return False  # wrong either way: the map-level evaluation reports it


def evaluate(text: str, variables: Mapping[str, Any]) -> bool:
    """The condition's value with ``variables`` bound (JSON values); raises ConditionError
    for an evaluation error or a result that is not a boolean (no truthiness)."""
    expression = _compiled(text, tuple(sorted(variables)))
    try:
        value = expression.eval(data={k: _cel_value(v) for k, v in variables.items()})
        kind = value.type().name()
        result = value.value()
    except Exception as exc:  # the binding raises RuntimeError/TypeError for values it cannot convert
        raise ConditionError(_clean(str(exc))) from None
    if kind == "ERROR":
        raise ConditionError(_clean(str(result)))
    if kind != "BOOL" or not isinstance(result, bool):
        raise ConditionError(f"the condition must be true or false, it gave {kind.lower()} {_short(result)}")
    return result


@lru_cache(maxsize=1024)
def _compiled(text: str, variables: tuple[str, ...]) -> Any:
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ConditionError(f"the condition has {len(text)} characters: at most {MAX_EXPRESSION_CHARS}")
    env = _env(variables)
    try:
        expression = env.compile(text)
    except Exception as exc:  # RuntimeError: INVALID_ARGUMENT: ERROR: <input>:1:4: Syntax error: …
        message = str(exc)
        m = _CEL_POSITION.search(message)
        line, column = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        raise ConditionError(_clean(message), line, column) from None
    kind = expression.return_type().name()
    if kind not in ("BOOL", "DYN"):
        raise ConditionError(f"the condition must be true or false, but it is always a {kind.lower()}", 1, 1)
    return expression


@lru_cache(maxsize=8)
def _env(variables: tuple[str, ...]) -> Any:
    # Lazily: native code, loaded only for workflows with conditions. The strings and math
    # extensions (trim, lowerAscii, split, …; greatest, least, …) as Kubernetes enables them.
    from cel_expr_python import cel
    from cel_expr_python.ext.ext_math import ExtMath
    from cel_expr_python.ext.ext_strings import ExtStrings

    types = {"tasks": cel.Type.Map(cel.Type.STRING, cel.Type.DYN)}
    return cel.NewEnv(variables={v: types.get(v, cel.Type.DYN) for v in variables},
                      extensions=[ExtStrings(), ExtMath()])


def _cel_value(value: Any) -> Any:
    """JSON → what CEL can hold: integers beyond int64 become doubles (as JSON readers do)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else float(value)
    if isinstance(value, dict):
        return {k: _cel_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cel_value(v) for v in value]
    return value


def _clean(message: str) -> str:
    """The library's status text without its codes and its ascii-art caret lines."""
    first = message.strip().splitlines()[0] if message.strip() else "evaluation failed"
    for prefix in ("INVALID_ARGUMENT: ", "ERROR: ", "NOT_FOUND: ", "CANCELLED: "):
        first = first.replace(prefix, "")
    first = _CEL_POSITION.sub("", first).replace(" (in container '')", "")
    return re.sub(r"\s*\[[A-Z_]+\]$", "", first).strip()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
