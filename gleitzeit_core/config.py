"""Configuration: defaults < config file < GLEITZEIT_* environment < flags.

Read once at start-up and passed down. Every value remembers where it came
from, so ``gleitzeit config`` can say why a setting has the value it has.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote

import yaml

from gleitzeit_core.errors import ConfigError
from gleitzeit_core.providers.declared import declarations
from gleitzeit_core.secret_sources import parse_allow
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.factory import BACKENDS, SQLITE_SYNCHRONOUS, make_store
from gleitzeit_core.workflow.policy import DEFAULT_MAX_DISK_MB, DEFAULT_MAX_MEMORY_MB, Allowance, resolve
from gleitzeit_sdk.declaration import ProviderDeclaration, ProviderSetting, SettingKind


def home_dir() -> Path:
    """~/.gleitzeit, or $GLEITZEIT_HOME (handy for tests and several installs)."""
    return Path(os.environ.get("GLEITZEIT_HOME") or Path.home() / ".gleitzeit").expanduser()


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _pos_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("expected a whole number ≥ 1")
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ValueError("expected a whole number ≥ 1") from None
    if n < 1 or (isinstance(v, float) and not v.is_integer()):
        raise ValueError("expected a whole number ≥ 1")
    return n


def _pos_int_or_off(v: Any) -> int:
    """A whole number ≥ 1, or 0 for "no limit"."""
    if not isinstance(v, bool) and str(v).strip() == "0":
        return 0
    return _pos_int(v)


def _pos_float(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError("expected a number > 0") from None
    if isinstance(v, bool) or not f > 0:
        raise ValueError("expected a number > 0")
    return f


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        s = str(v).strip().lower()
        if s not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return s
    return check


def _backend(v: Any) -> str:
    """The seed's ``none`` (no persistence) is the memory backend."""
    name = _choice(*BACKENDS, "none")(v)
    return "memory" if name == "none" else name


def _opt_str(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def _paths(v: Any) -> list[str]:
    """A list of folders; in the environment, separated like PATH (':')."""
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [p for p in v.split(os.pathsep) if p]
    if isinstance(v, (list, tuple)) and all(isinstance(p, str) for p in v):
        return list(v)
    raise ValueError("expected a list of folders")


@dataclass(frozen=True)
class Setting:
    default: Callable[[], Any]
    parse: Callable[[Any], Any]
    env: str | None = None
    help: str = ""


#: The engine's own settings; each installed provider adds its own (``_declared``).
ENGINE_SETTINGS: dict[str, Setting] = {
    "persistence.backend": Setting(lambda: "sqlite", _backend, "GLEITZEIT_PERSISTENCE_BACKEND", "where runs are stored"),
    "persistence.sqlite.db_path": Setting(lambda: str(home_dir() / "workflows.db"), str, "GLEITZEIT_SQLITE_PATH"),
    "persistence.sqlite.synchronous": Setting(lambda: "normal", _choice(*SQLITE_SYNCHRONOUS), "GLEITZEIT_SQLITE_SYNCHRONOUS",
                                              "full: fsync every commit (survives power loss; docs/persistence.md)"),
    "persistence.redis.url": Setting(lambda: None, _opt_str, "GLEITZEIT_REDIS_URL",
                                     "overrides host/port/db/password"),
    "persistence.redis.host": Setting(lambda: "localhost", str),
    "persistence.redis.port": Setting(lambda: 6379, _pos_int),
    "persistence.redis.db": Setting(lambda: 0, int),
    "persistence.redis.password": Setting(lambda: None, _opt_str),
    "providers.directory": Setting(lambda: str(home_dir() / "providers"), str, "GLEITZEIT_PROVIDERS_DIR",
                                   "registered provider manifests"),
    "execution.max_concurrent_tasks": Setting(lambda: 5, _pos_int, "GLEITZEIT_MAX_CONCURRENT"),
    "execution.max_map_items": Setting(lambda: 10_000, _pos_int, "GLEITZEIT_MAX_MAP_ITEMS",
                                       "items one for_each task may expand into"),
    # What a workflow file may grant itself (docs/security.md, "Allowances"); flags add to these.
    "sandbox.allow_read": Setting(lambda: [], _paths, "GLEITZEIT_SANDBOX_ALLOW_READ",
                                  "folders a workflow's sandbox.read may name (also --allow-read)"),
    "sandbox.allow_write": Setting(lambda: [], _paths, "GLEITZEIT_SANDBOX_ALLOW_WRITE",
                                   "folders a workflow's sandbox.write may name (also --allow-write)"),
    "sandbox.allow_network": Setting(lambda: False, _bool, "GLEITZEIT_SANDBOX_ALLOW_NETWORK",
                                     "may a workflow ask for sandbox network: true (also --allow-network)"),
    "sandbox.max_memory_mb": Setting(lambda: DEFAULT_MAX_MEMORY_MB, _pos_int, "GLEITZEIT_SANDBOX_MAX_MEMORY_MB",
                                     "largest sandbox memory_mb a workflow may ask for (also --max-memory-mb)"),
    "sandbox.max_disk_mb": Setting(lambda: DEFAULT_MAX_DISK_MB, _pos_int_or_off, "GLEITZEIT_SANDBOX_MAX_DISK_MB",
                                   "workspace quota of a python task, and the largest sandbox disk_mb it may ask "
                                   "for; 0: no quota, tasks write the workspace directly (seen while they run)"),
    "providers.allow_workflow": Setting(lambda: False, _bool, "GLEITZEIT_ALLOW_WORKFLOW_PROVIDERS",
                                        "may a workflow's providers: start programs (also --allow-providers)"),
    "secrets.allow": Setting(lambda: [], parse_allow, "GLEITZEIT_ALLOW_SECRETS",
                             "environment variables a workflow's secrets: may read: NAME or PREFIX* "
                             "(also --allow-secret; docs/inputs.md)"),
    "workspace.directory": Setting(lambda: str(home_dir() / "workspaces"), str, "GLEITZEIT_WORKSPACE_DIR",
                                   "per-run working folders of python tasks"),
    "cache.mode": Setting(lambda: "use", _choice("use", "off", "refresh"), "GLEITZEIT_CACHE_MODE",
                          "result cache: use, off (--no-cache) or refresh (--refresh-cache)"),
    "cache.max_entries": Setting(lambda: 100_000, _pos_int_or_off, "GLEITZEIT_CACHE_MAX_ENTRIES",
                                 "entries the result cache keeps; a write over it evicts the least recently "
                                 "used (0: no bound; docs/cache.md)"),
    "cache.max_mb": Setting(lambda: 1024, _pos_int_or_off, "GLEITZEIT_CACHE_MAX_MB",
                            "MiB of results the cache keeps, least recently used evicted first (0: no bound)"),
    "tracing.enabled": Setting(lambda: False, _bool, "GLEITZEIT_TRACING_ENABLED",
                               "send OpenTelemetry traces (also on when OTEL_EXPORTER_OTLP_ENDPOINT is set)"),
    "logging.level": Setting(lambda: "warning", _choice("debug", "info", "warning", "error"), "GLEITZEIT_LOG_LEVEL"),
}


def _parser(s: ProviderSetting) -> Callable[[Any], Any]:
    return {SettingKind.FLAG: _bool, SettingKind.COUNT: _pos_int, SettingKind.COUNT_OR_OFF: _pos_int_or_off,
            SettingKind.POSITIVE_NUMBER: _pos_float, SettingKind.TEXT: str, SettingKind.OPTIONAL_TEXT: _opt_str,
            SettingKind.CHOICE: _choice(*s.choices)}[s.kind]


def _declared(decl: ProviderDeclaration) -> dict[str, Setting]:
    """A provider declaration's settings, plus its ``providers.<name>.enabled``."""
    out = {f"providers.{decl.name}.enabled": Setting(lambda: True, _bool)}
    for s in decl.settings:
        out[s.key] = Setting(lambda d=s.default: d, _parser(s), s.env, s.help)
    return out


def _all_settings() -> dict[str, Setting]:
    """The engine's settings, then each installed provider's; a provider cannot redefine a key."""
    out = dict(ENGINE_SETTINGS)
    for decl in declarations():
        for key, setting in _declared(decl).items():
            if key in out:
                logging.getLogger("gleitzeit.config").warning(
                    "provider %r declares the setting %r, which is already defined: ignored", decl.name, key)
                continue
            out[key] = setting
    return out


#: Every configuration key: what the engine knows and what the installed providers declare.
SETTINGS: dict[str, Setting] = _all_settings()


@dataclass
class Config:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    file: Path | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str) -> Any:
        if key not in SETTINGS:
            raise ConfigError(f"unknown configuration key {key!r}{_did_you_mean(key)}")
        return self.values[key]

    @property
    def redis_url(self) -> str:
        if self.values["persistence.redis.url"]:
            return str(self.values["persistence.redis.url"])
        pw = self.values["persistence.redis.password"]
        auth = f":{quote(str(pw), safe='')}@" if pw else ""
        return f"redis://{auth}{self['persistence.redis.host']}:{self['persistence.redis.port']}/{self['persistence.redis.db']}"

    def make_store(self) -> Store:
        """The configured store, not yet opened: every default lives in SETTINGS."""
        return make_store(self["persistence.backend"], sqlite_path=self["persistence.sqlite.db_path"],
                          redis_url=self.redis_url, sqlite_synchronous=self["persistence.sqlite.synchronous"])

    def with_overrides(self, overrides: Mapping[str, Any], where: str = "argument") -> "Config":
        """A copy with these keys set (checked and parsed as flags are), e.g. from the Python API."""
        out = Config(dict(self.values), dict(self.sources), self.file)
        for key, raw in overrides.items():
            if key not in SETTINGS:
                raise ConfigError(f"unknown configuration key {key!r}{_did_you_mean(key)}")
            if raw is not None:
                out.values[key], out.sources[key] = _parse(key, raw, where), where
        return out

    def allowance(self, read: tuple[str, ...] = (), write: tuple[str, ...] = ()) -> Allowance:
        """What workflows may ask for: these settings, plus folders given on the command line."""
        return Allowance.of((*self["sandbox.allow_read"], *read), (*self["sandbox.allow_write"], *write),
                            network=bool(self["sandbox.allow_network"]),
                            max_memory_mb=int(self["sandbox.max_memory_mb"]),
                            max_disk_mb=int(self["sandbox.max_disk_mb"]),
                            workflow_providers=bool(self["providers.allow_workflow"]),
                            private=self.private_paths())

    def private_paths(self) -> tuple[str, ...]:
        """What no task may see or name, even inside a folder it may read: Gleitzeit's home, the
        SQLite store and its side files, all run workspaces (a task gets its own run's bound on
        top), the registered providers. Resolved, as the paths they are compared with."""
        paths = [str(home_dir()), self["workspace.directory"], self["providers.directory"]]
        if self["persistence.backend"] == "sqlite":
            db = self["persistence.sqlite.db_path"]
            paths += [db, db + "-wal", db + "-shm", db + "-journal"]
        return tuple(resolve(p) for p in paths)

    def section(self, prefix: str) -> dict[str, Any]:
        """Values under ``prefix.`` with the prefix removed (e.g. a provider's config)."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.values.items() if k.startswith(p)}


def _did_you_mean(key: str) -> str:
    hint = difflib.get_close_matches(key, SETTINGS, n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("GLEITZEIT_CONFIG")
    return Path(env).expanduser() if env else home_dir() / "config.yaml"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and not any(s == key for s in SETTINGS):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the configuration must be a YAML mapping")
    return flatten(data)


def _parse(key: str, raw: Any, where: str) -> Any:
    try:
        return SETTINGS[key].parse(raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {key} = {raw!r}: {exc}") from None


def load_config(path: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Build the effective configuration. ``overrides`` are command-line flags (None = not given)."""
    cfg = Config(file=config_path(path))
    for key, s in SETTINGS.items():
        cfg.values[key], cfg.sources[key] = s.default(), "default"
    for key, raw in read_file(cfg.file).items():
        if key not in SETTINGS:
            raise ConfigError(f"{cfg.file}: unknown key {key!r}{_did_you_mean(key)}")
        cfg.values[key], cfg.sources[key] = _parse(key, raw, str(cfg.file)), f"file {cfg.file}"
    for key, s in SETTINGS.items():
        if s.env and os.environ.get(s.env):
            cfg.values[key], cfg.sources[key] = _parse(key, os.environ[s.env], f"${s.env}"), f"env {s.env}"
    for key, raw in (overrides or {}).items():
        if raw is not None:
            cfg.values[key], cfg.sources[key] = _parse(key, raw, "command line"), "flag"
    return cfg


def set_in_file(path: Path, key: str, value: str) -> None:
    """Write one key into the config file (creating it), keeping the others."""
    if key not in SETTINGS:
        raise ConfigError(f"unknown configuration key {key!r}{_did_you_mean(key)}")
    try:  # YAML, so lists and numbers can be set; text YAML cannot read ('*') is taken as written
        raw = yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        raw = value
    parsed = _parse(key, raw, "value")
    data: dict[str, Any] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = parsed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def default_file_text() -> str:
    data: dict[str, Any] = {}
    for key, s in SETTINGS.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = s.default()
    return yaml.safe_dump(data, sort_keys=False)
