"""How an installed provider package introduces itself to the engine.

A package names a ``ProviderDeclaration`` in the ``gleitzeit.providers`` entry point
group of its ``pyproject.toml``::

    [project.entry-points."gleitzeit.providers"]
    acme = "acme_provider.declaration:PROVIDER"

The engine finds every installed one (``importlib.metadata``) without importing the
package by name: the manifest says how to start the provider, ``settings`` become
configuration keys (``gleitzeit config``, a config file, ``GLEITZEIT_*`` variables), and
``initialize`` says which of them (and which of the engine's own values) the provider
receives in ``initialize`` params.config. Every declared provider also gets
``providers.<name>.enabled`` (default true). A provider that is not a package, or needs
no settings, needs no declaration: a manifest registered in the providers folder is enough.

Plain data, no behaviour: loading it imports only this module.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The entry point group the engine reads.
ENTRY_POINT_GROUP = "gleitzeit.providers"


class SettingKind(enum.Enum):
    """What a setting's value may be; the engine parses and checks it (one line per error)."""

    FLAG = "flag"  # true/false (also yes/no, on/off, 1/0)
    COUNT = "count"  # a whole number ≥ 1
    COUNT_OR_OFF = "count_or_off"  # a whole number ≥ 1, or 0 for "off"
    POSITIVE_NUMBER = "positive_number"  # a number > 0 (seconds, ratios)
    TEXT = "text"
    OPTIONAL_TEXT = "optional_text"  # text, or unset (None)
    CHOICE = "choice"  # one of ``choices``


@dataclass(frozen=True)
class ProviderSetting:
    """One configuration key: its full dotted name (``providers.acme.endpoint``), default,
    kind, the environment variable that overrides it, and the help ``gleitzeit config`` shows."""

    key: str
    default: Any
    kind: SettingKind
    env: str | None = None
    help: str = ""
    choices: tuple[str, ...] = ()


class EngineValue(enum.Enum):
    """Values only the engine knows, which a provider may ask to receive in ``initialize``."""

    #: Paths no task may read or name (Gleitzeit's home, the store, all run workspaces,
    #: the registered providers): a provider reading files for a task refuses them.
    PRIVATE_PATHS = "private_paths"
    #: A folder of the provider's own under Gleitzeit's home (``<home>/<name>-provider``).
    STATE_DIR = "state_dir"


@dataclass(frozen=True)
class ProviderDeclaration:
    """``name`` must be the manifest's ``name``. ``initialize`` maps a dotted path in the
    provider's ``initialize`` config (``sandbox.require`` → ``{"sandbox": {"require": …}}``)
    to a configuration key (any key, also the engine's own) or an ``EngineValue``."""

    name: str
    manifest: Path
    settings: tuple[ProviderSetting, ...] = ()
    initialize: Mapping[str, str | EngineValue] = field(default_factory=dict)
