"""`gleitzeit worker`: serve the Redis queue with this machine's providers; `worker list`: the pool."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from typing import List, Optional

import typer
from rich.table import Table

from gleitzeit_core.cli.app import EXIT_USAGE, BackendOpt, CliState, JsonOpt, fail, run_async, state
from gleitzeit_core.cli.input_options import AllowSecretOpt, allowing_secrets
from gleitzeit_core.cli.render import emit
from gleitzeit_core.presentation.records import local_time

app = typer.Typer(help="Worker processes that run distributed tasks (`gleitzeit run --distributed`).")


def _redis_url(st: CliState) -> str:
    config = st.config()
    if config["persistence.backend"] != "redis":
        fail("workers coordinate through Redis: use --backend redis", EXIT_USAGE)
    return config.redis_url


@app.callback(invoke_without_command=True)
def worker(
    ctx: typer.Context,
    backend: BackendOpt = None,
    providers: Optional[str] = typer.Option(None, "--providers", help="Comma-separated provider names to serve (default: all)."),
    manifest: Optional[List[str]] = typer.Option(None, "--manifest", help="Extra provider manifest file (repeatable)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Attempts this worker runs at once."),
    name: Optional[str] = typer.Option(None, "--name", help="Worker name (default: HOST-PID)."),
    visibility_timeout: float = typer.Option(30.0, "--visibility-timeout", min=1.0,
                                             help="Seconds before a dead worker's claimed attempts go to another."),
    env_file: Optional[str] = typer.Option(None, "--env-file", help="NAME=value lines: ${secrets.NAME} values, over the environment."),
    allow_secret: AllowSecretOpt = None,
    metrics_port: Optional[int] = typer.Option(None, "--metrics-port", min=0, max=65535,
                                               help="Serve Prometheus metrics on this port (0: any free one)."),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="Address the metrics port binds to."),
) -> None:
    """Run attempts from the Redis queue until stopped (Ctrl-C / SIGTERM: running attempts are
    handed back as retryable, the worker deregisters).

    Example: gleitzeit worker --backend redis --providers python --concurrency 8

    Example: gleitzeit worker --backend redis --allow-secret API_TOKEN   (attempts may read it from here)
    """
    st = state(ctx, backend=backend)
    if ctx.invoked_subcommand is not None:
        return
    url = _redis_url(st)
    config = allowing_secrets(st.config(), allow_secret)
    wanted = [p.strip() for p in providers.split(",") if p.strip()] if providers else None

    async def go() -> None:
        from redis.exceptions import RedisError

        from gleitzeit_core.dispatch.factory import make_dispatcher
        from gleitzeit_core.distributed.worker import Worker, WorkerOptions
        from gleitzeit_core.errors import ConfigError, StoreUnavailable
        from gleitzeit_core.metrics import serve as metrics_server
        from gleitzeit_core.redis_keys import connect, redact

        from gleitzeit_core.secret_fill import read_env_file
        from gleitzeit_core.secret_sources import AllowList

        local = make_dispatcher(config, extra=manifest or (), only=wanted)  # ConfigError: exit 2
        options = WorkerOptions(name=name or f"{socket.gethostname()}-{os.getpid()}", concurrency=concurrency,
                                visibility_timeout=visibility_timeout, env=read_env_file(env_file) if env_file else {},
                                allow=AllowList.of(config["secrets.allow"]))
        r = connect(url)
        try:
            try:
                await r.ping()  # before starting any provider
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(f"redis unreachable at {redact(url)}: {exc}") from None
            async with local:
                w = Worker(r, local, options)
                with contextlib.ExitStack() as stack:
                    if metrics_port is not None:  # bound first: a taken port fails before any provider starts
                        try:
                            port = stack.enter_context(metrics_server(w.metrics.registry, metrics_host, metrics_port))
                        except OSError as exc:
                            raise ConfigError(f"--metrics-port {metrics_port} on {metrics_host}: "
                                              f"{exc.strerror or exc}") from None
                    await w.start()
                    print(f"worker {options.name} serving {', '.join(w.protocols)} (concurrency {concurrency})",
                          file=sys.stderr, flush=True)
                    if metrics_port is not None:
                        print(f"metrics on http://{metrics_host}:{port}/metrics", file=sys.stderr, flush=True)
                    await w.run()
        finally:
            await r.aclose()

    run_async(go)


@app.command("list")
def list_workers(ctx: typer.Context, backend: BackendOpt = None, json_out: JsonOpt = False) -> None:
    """Live workers: name, host, protocols, running attempts, last heartbeat.

    Example: gleitzeit worker list --backend redis --json
    """
    st = state(ctx, json=json_out, backend=backend)
    url = _redis_url(st)

    async def go() -> list:
        from redis.exceptions import RedisError

        from gleitzeit_core.dispatch.queue import live_workers
        from gleitzeit_core.errors import StoreUnavailable
        from gleitzeit_core.redis_keys import connect, redact

        r = connect(url)
        try:
            return await live_workers(r)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis unreachable at {redact(url)}: {exc}") from None
        finally:
            await r.aclose()

    workers = run_async(go)

    def table() -> None:
        t = Table()
        for col in ("worker", "host", "protocols", "running", "done", "last heartbeat"):
            t.add_column(col)
        for w in workers:
            caps = ", ".join(f"{p}×{n}" for p, n in sorted(w.capacity.items()))
            t.add_row(w.name, w.host, caps, str(w.running), str(w.done),
                      f"{local_time(w.heartbeat)} ({time.time() - w.heartbeat:.1f} s ago)")
        st.console.print(t if workers else "no live workers")

    emit(st.json, [w.to_json() for w in workers], table)

