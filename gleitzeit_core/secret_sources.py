"""Where a secret's value may come from: the runner decides, never the workflow file.

A workflow file is untrusted, and its ``secrets:`` list is only names. If a name
alone fetched whatever the engine's (or a worker's) environment holds under it, a
hostile file could ask for ``AWS_SECRET_ACCESS_KEY`` or ``GLEITZEIT_REDIS_URL``, and
masking does not stop a task that transforms the value and sends it out. So:

* values the runner *gives* (``--env-file``, the API's ``secrets=``) are its choice
  and always used;
* the environment is read only for names the runner *allows*: ``--allow-secret NAME``,
  ``secrets.allow`` in the config file, ``GLEITZEIT_ALLOW_SECRETS`` — an exact name, or
  a prefix ending in ``*`` (``OPENAI_*``, as Kestra reads only ``SECRET_*`` variables);
  a bare ``*`` is refused, since it would hand every variable to every workflow.

A name neither given nor allowed is never looked up, so a refusal says nothing about
whether the variable exists.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_ENTRY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?")


def parse_allow(value: Any) -> list[str]:
    """``secrets.allow`` as written: a list of entries, or (the environment) one text with
    entries separated by commas or spaces. Raises ValueError naming the bad entry."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        entries = [e for e in re.split(r"[\s,]+", value) if e]
    elif isinstance(value, (list, tuple)) and all(isinstance(e, str) for e in value):
        entries = [e.strip() for e in value]
    else:
        raise ValueError("expected a list of variable names (NAME, or a prefix such as OPENAI_*)")
    for entry in entries:
        check_entry(entry)
    return entries


def check_entry(entry: str) -> None:
    """One allow-list entry: ``NAME`` or ``PREFIX*``; raises ValueError saying why not."""
    if entry.strip("*") == "":
        raise ValueError(f"{entry!r} would give every variable of this environment to any workflow that "
                         f"asks: list the names (or a prefix such as OPENAI_*)")
    if not _ENTRY.fullmatch(entry):
        raise ValueError(f"{entry!r} is not a variable name, or a name prefix followed by one '*' (OPENAI_*)")


@dataclass(frozen=True)
class AllowList:
    """The environment variables the runner lets workflows' secrets read."""

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, entries: Iterable[str]) -> AllowList:
        entries = list(entries)
        for entry in entries:
            check_entry(entry)
        return cls(frozenset(e for e in entries if not e.endswith("*")),
                   tuple(e[:-1] for e in entries if e.endswith("*")))

    def allows(self, name: str) -> bool:
        """Case-sensitive, as environment names are on POSIX."""
        return name in self.names or any(name.startswith(p) for p in self.prefixes)


#: The default: no environment variable is a secret's value.
NONE_ALLOWED = AllowList()


class Unavailable(enum.Enum):
    """Why a secret has no value."""

    NOT_ALLOWED = "not allowed"  # not given, and the runner does not let the environment supply it
    NOT_SET = "not set"  # given nowhere, allowed but absent or empty


def lookup(name: str, given: Mapping[str, str], allow: AllowList,
           environ: Mapping[str, str]) -> str | Unavailable:
    """A secret's value: given explicitly, else from ``environ`` if the runner allows the name."""
    if name in given:
        return given[name] or Unavailable.NOT_SET
    if not allow.allows(name):
        return Unavailable.NOT_ALLOWED
    return environ.get(name) or Unavailable.NOT_SET


def how_to_allow(name: str, start: str = "run") -> str:
    """The end of a NOT_ALLOWED message: exactly what the runner can do (``start``: the command)."""
    return (f"the environment is read only for names the runner allows: {start} with --allow-secret {name} "
            f"(or list it under secrets.allow in the config), or give its value with --env-file")
