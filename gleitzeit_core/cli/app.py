"""Shared CLI plumbing: global options, error → exit code mapping, signals.

Exit codes: 0 ok, 1 the thing ran and failed (or was not found), 2 bad input
or usage, 130 interrupted.
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

from gleitzeit_core.config import Config, load_config
from gleitzeit_core.errors import GleitzeitError
from gleitzeit_core.store.base import Store

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
NOISY_LOGGERS = ("aiosqlite", "asyncio")


class Interrupted(Exception):
    pass


@dataclass
class CliState:
    """What the global options decided; commands add their own flags through ``override``."""

    config_path: str | None = None
    verbose: bool = False
    debug: bool = False
    json: bool = False
    no_color: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)  # config keys set by flags
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

    @property
    def live(self) -> bool:
        """Whether runs show the live table: a terminal on stdout and no --json."""
        return sys.stdout.isatty() and not self.json

    @property
    def console(self) -> Console:
        return Console(no_color=self.no_color, highlight=False)

    def store(self) -> Store:
        from gleitzeit_core.store.factory import make_store

        cfg = self.config()
        return make_store(cfg["persistence.backend"], sqlite_path=cfg["persistence.sqlite.db_path"],
                          redis_url=cfg.redis_url)


#: Options every data command also accepts after its name (`gleitzeit task list --json`),
#: merged into the global ones by ``state``.
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout (documented shape).")]
BackendOpt = Annotated[Optional[str], typer.Option("--backend", help="Persistence backend: sqlite, redis or memory.")]


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


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """One readable line on stderr, then the exit code."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


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


def run_async(st: CliState, fn: Callable[[], Awaitable[T]]) -> T:
    """anyio.run with the project's error policy: no traceback unless --debug."""
    try:
        return anyio.run(_until_signal, fn, backend="asyncio")
    except typer.Exit:
        raise
    except Interrupted:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BaseException as exc:  # noqa: BLE001 — the one place errors become exit codes
        inner = _unwrap(exc)
        if isinstance(inner, typer.Exit):
            raise inner from None
        if isinstance(inner, KeyboardInterrupt):
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if st.debug:
            raise
        if isinstance(inner, GleitzeitError):
            for line in str(inner).splitlines() or [type(inner).__name__]:
                print(f"error: {line}", file=sys.stderr)
            raise typer.Exit(inner.exit_code) from None
        print(f"error: {type(inner).__name__}: {inner} (run with --debug for the traceback)", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED) from None


def _unwrap(exc: BaseException) -> BaseException:
    """The one error a person should see: concurrent tasks that hit the same
    problem (a store gone away) arrive as a group of several."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [_unwrap(e) for e in exc.exceptions]
    return next((e for e in leaves if isinstance(e, GleitzeitError)), leaves[0])
