"""Run-time inputs: the ``inputs:`` / ``secrets:`` declarations, and values checked against them.

An input is a JSON Schema fragment (validated with ``jsonschema``); values come
from ``--param NAME=VALUE`` (text converted by the declared type), a params file,
the Python API's ``params=`` or a sub-workflow's ``with:``. Every value is checked
before anything is stored, and each problem is one ``file:line:col`` line: at the
value's own position when it has one (a params file), else at the declaration.

``check_values`` is the one check of a values mapping against declared inputs;
sub-workflows call it for ``with:`` (skipping values only the run will know).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gleitzeit_core.errors import Problem, WorkflowInvalid
from gleitzeit_core.workflow.model import InputSpec, SecretSpec, SourcePos, Workflow
from gleitzeit_core.workflow.source import Marks, parse
from gleitzeit_sdk import jsonlimits

#: An input or secret name: what ``${inputs.NAME}`` and an environment variable can both spell.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
TYPES = ("string", "integer", "number", "boolean", "array", "object")
#: The JSON Schema keywords an input may use (the subset that describes one value).
SCHEMA_KEYS = ("type", "description", "title", "default", "required", "enum", "const", "examples",
               "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
               "minLength", "maxLength", "pattern", "format", "items", "minItems", "maxItems", "uniqueItems",
               "properties", "additionalProperties")
_JSON_EXAMPLES = {"array": '["a", "b"]', "object": '{"k": 1}'}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Given:
    """One supplied value: ``where`` it was written (None: report at the declaration) and
    ``label``, how the user wrote it (``--param limit=abc``), for the message."""

    value: Any
    where: str | None = None
    label: str = ""


Report = Callable[[SourcePos, str], None]


# -- declarations (the loader) -------------------------------------------------------

def read_inputs(data: dict, marks: Marks, report: Report) -> tuple[InputSpec, ...]:
    """The workflow's ``inputs:`` block, each schema checked (and its default against it)."""
    block = data.get("inputs")
    if block is None:
        return ()
    if not isinstance(block, dict):
        report(marks.value(data, "inputs"), "'inputs' must map input names to schemas such as "
                                            "{type: string, default: eu}")
        return ()
    out = []
    for name, schema in block.items():
        where = marks.key(block, name)
        if not isinstance(name, str) or not NAME.fullmatch(name):
            report(where, f"input name {name!r}: use letters, digits and '_' (not first), at most 64 characters, "
                          "so that ${inputs.NAME} and --param NAME=… can spell it")
            continue
        spec = _declaration(name, schema, marks.value(block, name), marks, report)
        if spec is not None:
            out.append(spec)
    return tuple(out)


def _declaration(name: str, schema: Any, where: SourcePos, marks: Marks, report: Report) -> InputSpec | None:
    label = f"input {name!r}"
    if not isinstance(schema, dict):
        report(where, f"{label}: the declaration must be a mapping such as {{type: string}}, not {_kind(schema)}")
        return None
    ok = True
    for key in schema:
        if key not in SCHEMA_KEYS:
            close = difflib.get_close_matches(str(key), SCHEMA_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(SCHEMA_KEYS)}"
            report(marks.key(schema, key), f"{label}: unknown key {key!r}{hint}")
            ok = False
    kind = schema.get("type")
    if kind not in TYPES:
        at = marks.value(schema, "type") if "type" in schema else where
        report(at, f"{label}: 'type' must be one of {', '.join(TYPES)}" + (f", got {kind!r}" if "type" in schema else
                                                                            " (it decides how --param text is read)"))
        ok = False
    if schema.get("format") == "secret":
        report(marks.value(schema, "format"), f"{label}: secrets are not inputs (inputs are stored with the run): "
                                              f"list the name under 'secrets:' and write ${{secrets.{name}}}")
        ok = False
    required = schema.get("required", "default" not in schema)
    if not isinstance(required, bool):
        report(marks.value(schema, "required"), f"{label}: 'required' must be true or false")
        ok = False
    elif required and "default" in schema and "required" in schema:
        report(marks.key(schema, "required"), f"{label}: an input with a default is not required; drop one of them")
        ok = False
    plain = {k: v for k, v in schema.items() if k != "required"}
    if ok:
        from jsonschema import Draft202012Validator, SchemaError  # where used: `import gleitzeit_core` stays light

        try:
            Draft202012Validator.check_schema(plain)
        except SchemaError as exc:
            report(where, f"{label}: not a valid schema: {exc.message}")
            ok = False
    if ok and "default" in plain:
        problem = _first_error(plain, plain["default"])
        if problem:
            report(marks.value(schema, "default"), f"{label}: the default {problem}")
            ok = False
    return InputSpec(name, plain, bool(required), where) if ok else None


def read_secrets(data: dict, marks: Marks, report: Report) -> tuple[SecretSpec, ...]:
    """``secrets: [NAME, …]``: names only, each an environment variable name, once."""
    block = data.get("secrets")
    if block is None:
        return ()
    if not isinstance(block, list):
        report(marks.value(data, "secrets"), "'secrets' must be a list of names such as [API_TOKEN]; the values "
                                             "come from the environment or --env-file, never from the file")
        return ()
    out: dict[str, SecretSpec] = {}
    for i, name in enumerate(block):
        where = marks.value(block, i)
        if not isinstance(name, str) or not NAME.fullmatch(name):
            report(where, f"secret {name!r}: a secret is named like an environment variable "
                          "(letters, digits, '_'; at most 64 characters)")
        elif name in out:
            report(where, f"secret {name!r} is listed twice")
        else:
            out[name] = SecretSpec(name, where)
    return tuple(out.values())


# -- values -------------------------------------------------------------------------

def check_values(declared: Sequence[InputSpec], given: Mapping[str, Any], *, source: str = "the run",
                 deferred: Callable[[Any], bool] = lambda _: False,
                 fallback: str = "<workflow>") -> tuple[dict[str, Any], list[Problem]]:
    """``given`` (name → value or ``Given``) checked against ``declared``: the complete values
    (defaults filled in, optional inputs without a value are None) and every problem.

    ``deferred(value)`` is true for a value only the run will know (a ``${…}`` in a
    sub-workflow's ``with:``): it is not type-checked. ``source`` says in messages where
    values come from ("--param", "with:"); ``fallback`` is the position of problems
    of a workflow without positions.
    """
    by_name = {d.name: d for d in declared}
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, item in given.items():
        g = item if isinstance(item, Given) else Given(item)
        if name not in by_name:
            close = difflib.get_close_matches(str(name), list(by_name), n=1)
            hint = (f"; did you mean {close[0]!r}?" if close else
                    f"; it declares: {', '.join(by_name)}" if by_name else "; it declares no inputs")
            problems.append(Problem(g.where or fallback, f"{g.label or source}: the workflow has no input {name!r}{hint}"))
            continue
        decl = by_name[name]
        if not deferred(g.value):
            problem = _unstorable(g.value) or _first_error(decl.schema, g.value)
            if problem:
                shown = g.label or f"{source} value {_short(g.value)}"
                at = "" if g.where is None or decl.pos is None else f" (declared at {decl.pos})"
                problems.append(Problem(g.where or str(decl.pos or fallback),
                                        f"input {name!r}: {shown}: {problem}{at}"))
                continue
        values[name] = g.value
    for decl in declared:
        if decl.name in values or decl.name in given:
            continue
        if "default" in decl.schema:
            values[decl.name] = decl.schema["default"]
        elif decl.required:
            problems.append(Problem(str(decl.pos or fallback), f"input {decl.name!r} is required and has no "
                                                               f"value{_how(source, decl.name)}"))
        else:
            values[decl.name] = None
    return values, problems


def bind(workflow: Workflow, given: Mapping[str, Any], *, source: str = "params") -> Workflow:
    """``workflow`` with its checked input values, ready to run; raises ``WorkflowInvalid``."""
    shown = next((t.pos.file for t in workflow.tasks if t.pos), None)
    values, problems = check_values(workflow.inputs, given, source=source,
                                    fallback=shown or workflow.source_path or workflow.name)
    if problems:
        raise WorkflowInvalid(problems)
    return replace(workflow, input_values=values)


def from_cli(declared: Sequence[InputSpec], args: Iterable[str]) -> tuple[dict[str, Given], list[Problem]]:
    """``--param NAME=VALUE`` arguments, each text converted by the declared type
    (integer, number, boolean; array and object as JSON); checking is ``check_values``'s."""
    by_name = {d.name: d for d in declared}
    out: dict[str, Given] = {}
    problems: list[Problem] = []
    for arg in args:
        name, eq, text = arg.partition("=")
        label = f"--param {arg if len(arg) <= 60 else arg[:57] + '...'}"
        if not eq or not name:
            problems.append(Problem("--param", f"{label}: write NAME=VALUE, such as --param region=eu"))
            continue
        decl = by_name.get(name)
        try:
            value = _convert(text, decl.schema.get("type")) if decl else text
        except ValueError as exc:
            assert decl is not None
            problems.append(Problem(str(decl.pos or "--param"), f"input {name!r}: {label}: {exc}"))
            continue
        out[name] = Given(value, None, label)
    return out, problems


def from_file(path: str) -> tuple[dict[str, Given], list[Problem]]:
    """A params file (JSON or YAML mapping of input names to values), each value positioned."""
    fmt = "json" if path.lower().endswith(".json") else "yaml"
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [Problem(path, f"cannot read the params file: {getattr(exc, 'strerror', None) or exc}")]
    data, marks, problems = parse(text, path, fmt)
    if problems:
        return {}, problems
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return {}, [Problem(str(marks.of(data)), "a params file is a mapping of input names to values")]
    return {str(k): Given(v, str(marks.value(data, k)), f"{os.path.basename(path)}: {k}") for k, v in data.items()}, []


def _convert(text: str, kind: Any) -> Any:
    """Command-line text as a value of the declared type; raises ValueError saying what to write."""
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"{text!r} is not a finite number")
        return int(number) if number.is_integer() and re.fullmatch(r"\s*[-+]?\d+\s*", text) else number
    if kind == "boolean":
        low = text.strip().lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise ValueError(f"{text!r} is not true or false")
    if kind in ("array", "object"):
        try:
            value = json.loads(text)
        except RecursionError:
            raise ValueError("nests too deeply") from None
        except json.JSONDecodeError as exc:
            example = _JSON_EXAMPLES[kind]
            raise ValueError(f"not JSON ({exc.msg} at character {exc.pos}); write the {kind} as JSON, "
                             f"such as {example}") from None
        return value
    return text


def _unstorable(value: Any) -> str | None:
    """Values are stored and substituted: the store's JSON bounds apply (depth, numbers, text)."""
    try:
        jsonlimits.check(value)
    except (jsonlimits.ValueRejected, TypeError) as exc:
        return f"cannot be stored: {exc}"
    return None


def _first_error(schema: dict, value: Any) -> str | None:
    from jsonschema import Draft202012Validator

    try:
        error = min(Draft202012Validator(schema).iter_errors(value), key=lambda e: len(e.path), default=None)
    except RecursionError:
        return "nests too deeply to check"
    if error is None:
        return None
    at = "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"{at + ' ' if at else ''}{error.message}"


def _how(source: str, name: str) -> str:
    if source == "params":
        return f": pass it with --param {name}=… (or a --params-file; in Python params={{{name!r}: …}})"
    return f" in {source}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    return {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__)


def bind_cli(workflow: Workflow, params: Sequence[str], params_file: str | None) -> Workflow:
    """``workflow`` bound to ``--params-file`` values overridden by ``--param`` ones; raises WorkflowInvalid."""
    given: dict[str, Given] = {}
    problems: list[Problem] = []
    if params_file:
        from_params_file, problems = from_file(params_file)
        given.update(from_params_file)
    from_args, more = from_cli(workflow.inputs, params)
    given.update(from_args)
    if problems or more:
        raise WorkflowInvalid(problems + more)
    return bind(workflow, given)
