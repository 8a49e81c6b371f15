"""Shared CLI plumbing: global options, the async runner, signals.

Exit codes: 0 ok, 1 the thing ran and failed (or was not found), 2 bad input
or usage, 130 interrupted. How an error is printed lives in ``failure``.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any, Awaitable, Callable, NoReturn, Optional, TypeVar

import anyio
import typer
from rich.console import Console

from gleitzeit_core.cli.console import CliConsole
from gleitzeit_core.cli.failure import (  # noqa: F401 — the exit codes are re-exported to the commands
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandFailed,
    ErrorKind,
    Interrupted,
)
from gleitzeit_core.config import Config, load_config
from gleitzeit_core.errors import primary
from gleitzeit_core.store.base import Store
from gleitzeit_core.workflow.policy import Allowance

T = TypeVar("T")

NOISY_LOGGERS = ("asyncio",)


@dataclass
class CliState:
    """What the global options decided; commands add their own flags through ``override``."""

    config_path: str | None = None
    verbose: bool = False
    debug: bool = False
    json: bool = False
    no_color: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)  # config keys set by flags
    allow_read: tuple[str, ...] = ()  # --allow-read folders, added to sandbox.allow_read
    allow_write: tuple[str, ...] = ()
    _config: Config | None = None

    def override(self, key: str, value: Any) -> None:
        """A flag's value for a config key (the top layer); None means the flag was not given."""
        if value is not None:
            self.overrides[key] = value
            self._config = None

    def config(self) -> Config:
        """The effective configuration, loaded on first use (errors surface inside ``run_async``)."""
        if self._config is None:
            self._config = load_config(self.config_path, self.overrides)
            if not (self.verbose or self.debug):  # GLEITZEIT_LOG_LEVEL / logging.level; -v and --debug win
                logging.getLogger().setLevel(str(self._config["logging.level"]).upper())
        return self._config

    def allowance(self) -> Allowance:
        """What a workflow may ask for: the config's allowances plus this command's --allow-* flags."""
        return self.config().allowance(self.allow_read, self.allow_write)

    @property
    def live(self) -> bool:
        """Whether runs show the live table: a terminal on stdout and no --json."""
        return sys.stdout.isatty() and not self.json

    @property
    def console(self) -> Console:
        return CliConsole(no_color=self.no_color, highlight=False)

    def store(self) -> Store:
        from gleitzeit_core.liveness import mark_orphans

        cfg = self.config()
        store = cfg.make_store()
        store.after_open = mark_orphans  # every command sees runs of dead engines as interrupted
        return store


#: Options every data command also accepts after its name (`gleitzeit task list --json`),
#: merged into the global ones by ``state``.
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout (documented shape).")]
BackendOpt = Annotated[Optional[str], typer.Option("--backend", help="Persistence backend: sqlite, redis or memory.")]


#: The runner's allowances for what a workflow file may grant itself (docs/security.md).
AllowReadOpt = Annotated[Optional[list[str]], typer.Option(
    "--allow-read", metavar="DIR", help="Let the workflow's sandbox.read name this folder (repeatable).")]
AllowWriteOpt = Annotated[Optional[list[str]], typer.Option(
    "--allow-write", metavar="DIR", help="Let the workflow's sandbox.write name this folder (repeatable).")]
AllowNetworkOpt = Annotated[bool, typer.Option(
    "--allow-network", help="Let the workflow's sandbox ask for network: true.")]
MaxMemoryOpt = Annotated[Optional[int], typer.Option(
    "--max-memory-mb", min=1, help="Largest sandbox memory_mb the workflow may ask for.")]
AllowProvidersOpt = Annotated[bool, typer.Option(
    "--allow-providers", help="Let the workflow's providers: start the programs its manifests name.")]


def allow(st: CliState, read: list[str] | None, write: list[str] | None, network: bool,
          max_memory_mb: int | None, providers: bool) -> None:
    """Fold a command's --allow-* flags into its state (flags only widen the config's allowances)."""
    st.allow_read, st.allow_write = tuple(read or ()), tuple(write or ())
    st.override("sandbox.allow_network", True if network else None)
    st.override("sandbox.max_memory_mb", max_memory_mb)
    st.override("providers.allow_workflow", True if providers else None)


#: The --allow-* flags ``allowances`` adds to a command: (parameter, its type, default).
_ALLOWANCES = (("allow_read", AllowReadOpt, None), ("allow_write", AllowWriteOpt, None),
               ("allow_network", AllowNetworkOpt, False), ("max_memory_mb", MaxMemoryOpt, None),
               ("allow_providers", AllowProvidersOpt, False))
F = TypeVar("F", bound=Callable[..., Any])


def allowances(command: F) -> F:
    """Give a command that loads a workflow (run, workflow submit/resume, validate) the runner's
    --allow-* flags, folded into its state before it runs: declared once, here."""
    import functools
    import inspect

    names = [name for name, _, _ in _ALLOWANCES]

    @functools.wraps(command)
    def wrapper(ctx: typer.Context, *args: Any, **kwargs: Any) -> Any:
        allow(state(ctx), *(kwargs.pop(name) for name in names))
        return command(ctx, *args, **kwargs)

    own = inspect.signature(command, eval_str=True)
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
             for name, kind, default in _ALLOWANCES]
    wrapper.__signature__ = own.replace(parameters=[*own.parameters.values(), *extra])  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def state(ctx: typer.Context, *, json: bool = False, backend: str | None = None) -> CliState:
    """The root's CliState with this command's own --json/--backend folded in."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = ctx.find_root().obj = CliState()
    obj.json = obj.json or json
    obj.override("persistence.backend", backend)
    return obj


def setup_logging(st: CliState) -> None:
    """Logs go to stderr; called again when a command's own -v/--debug raise the level."""
    level = logging.DEBUG if st.debug else logging.INFO if st.verbose else logging.WARNING
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    for noisy in NOISY_LOGGERS:  # their DEBUG lines drown the engine's and the providers'
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


def fail(message: str, code: int = EXIT_FAILED, kind: ErrorKind | None = None) -> NoReturn:
    """Stop the command: ``main`` prints the message (and the JSON error under --json) and exits with ``code``."""
    raise CommandFailed(message, code, kind or (ErrorKind.USAGE if code == EXIT_USAGE else ErrorKind.FAILED))


def not_found(message: str) -> NoReturn:
    """A run, task or provider named on the command line does not exist (exit 1)."""
    raise CommandFailed(message, EXIT_FAILED, ErrorKind.NOT_FOUND)


async def _until_signal(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn``; SIGINT/SIGTERM cancel it (its cleanup runs) and raise Interrupted."""
    result: list[T] = []
    interrupted = False
    async with anyio.create_task_group() as tg:
        async def watch() -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    interrupted = True
                    tg.cancel_scope.cancel()
                    return

        async def body() -> None:
            result.append(await fn())
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        tg.start_soon(body)
    if interrupted or not result:
        raise Interrupted()
    return result[0]


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """anyio.run, handing ``main`` the one error a person should see (``errors.primary``)."""
    try:
        return anyio.run(_until_signal, fn, backend="asyncio")
    except BaseExceptionGroup as group:
        raise primary(group) from group
