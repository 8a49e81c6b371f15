"""The provider packages installed beside the engine, found by their ``gleitzeit.providers``
entry points (``gleitzeit_sdk.declaration``), never by importing a package by name.

The built-in providers declare themselves this way in pyproject.toml, so an editable and
a plain ``pip install .`` both provide them; any other installed package may do the same.
"""

from __future__ import annotations

import logging
from functools import cache

from gleitzeit_sdk.declaration import ENTRY_POINT_GROUP, ProviderDeclaration

log = logging.getLogger("gleitzeit.provider")


@cache
def declarations() -> tuple[ProviderDeclaration, ...]:
    """Every installed declaration, by name (the first installed one of a name wins); one
    that cannot be loaded is a warning, never a failed command."""
    from importlib.metadata import entry_points  # ~10 ms of scanning, once per process

    found: dict[str, ProviderDeclaration] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            decl = ep.load()
        except Exception as exc:  # a broken third-party package must not stop the engine
            log.warning("provider declaration %s = %s cannot be loaded: %s", ep.name, ep.value, exc)
            continue
        if not isinstance(decl, ProviderDeclaration):
            log.warning("provider declaration %s = %s is not a ProviderDeclaration", ep.name, ep.value)
            continue
        found.setdefault(decl.name, decl)
    return tuple(found[name] for name in sorted(found))


def missing_hint() -> str:
    """Why no built-in provider is known, when none is: the installed metadata predates them."""
    return (f"no installed package declares a provider (entry point group {ENTRY_POINT_GROUP!r}): the installed "
            "gleitzeit metadata is older than its source; reinstall it (pip install -e . in the source folder)")
