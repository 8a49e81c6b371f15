"""The dispatcher contract suite's adapters: ``scripted`` (in memory), ``local`` (a real
provider process) and ``redis`` (a real redis-server and a real `gleitzeit worker`); and
the engine's own stops on the way, each around ``local``: ``secrets`` (SecretsDispatcher,
with a secret value to mask) and ``subworkflow`` (GroupDispatcher).

Each serves protocol ct/v1 with the behaviour of contract_provider.py, two attempts
at once, and writes what reached the "provider" to a log file the tests read.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import anyio
import pytest

from gleitzeit_core.config import Config, load_config
from gleitzeit_core.dispatch.scripted import ScriptedCall, ScriptedDispatcher
from gleitzeit_core.errors import ProviderError
from gleitzeit_sdk.codes import FailureKind
from tests.distributed.conftest import Pool, pool_factory  # noqa: F401  (the redis adapter's workers)

HERE = Path(__file__).resolve().parent
MANIFEST = str(HERE / "contract.yaml")
PROTOCOL = "ct/v1"
CAPACITY = 2
ADAPTERS = ("scripted", "local", "redis", "secrets", "subworkflow")
#: A secret the ``secrets`` adapter masks; no contract task prints it, so nothing changes.
SECRET = "contract-secret-value-7f3a"


def note(log: str, event: str, name: str) -> None:
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{event} {name} {os.getpid()}\n")


async def contract_handler(call: ScriptedCall) -> Any:
    """contract_provider.py's methods, in this process."""
    p, method = call.params, call.task.method
    note(p["log"], "start", p["name"])
    if method == "ct/sleep":
        try:
            await anyio.sleep(p.get("seconds", 0.0))
        except anyio.get_cancelled_exc_class():
            note(p["log"], "cancelled", p["name"])
            raise
        note(p["log"], "end", p["name"])
        return {"name": p["name"], "meta": {k: call.meta.get(k) for k in ("attempt", "taskId", "runId", "traceparent")}}
    if method == "ct/print":
        for line in p["lines"]:
            call.print(line)
        return {"printed": len(p["lines"])}
    if method == "ct/crash":  # what the host reports when a provider process dies mid-request
        raise ProviderError("provider 'contract' crashed during ct/crash", kind=FailureKind.CRASHED, retryable=True)
    raise ProviderError(f"no method {method}", kind=FailureKind.INVALID_PARAMS, retryable=False)


METHODS = {m: {"paramsSchema": {"type": "object"}} for m in ("ct/sleep", "ct/print", "ct/crash")}


@dataclass
class Adapter:
    """One adapter under test: ``open()`` gives an entered dispatcher."""

    name: str
    tmp: Path
    config: Config
    open: Callable[[], Any]
    pool: Pool | None = None  # redis: the worker pool
    wrap: Callable[[Any], Any] | None = None  # secrets, subworkflow: the wrapper around another dispatcher
    log: str = ""

    def events(self) -> list[tuple[str, str, int]]:
        path = Path(self.log)
        if not path.exists():
            return []
        return [(e, n, int(pid)) for e, n, pid in (line.split() for line in path.read_text().splitlines())]

    def started(self) -> list[str]:
        return [n for e, n, _ in self.events() if e == "start"]


def contract_config(tmp: Path, **values: Any) -> Config:
    return load_config(tmp / "config.yaml", overrides={
        "providers.directory": str(tmp / "providers"), "workspace.directory": str(tmp / "workspaces"),
        "logging.level": "warning", **values})


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Adapter:
    name = request.param
    log = str(tmp_path / "provider.log")
    if name == "scripted":
        @asynccontextmanager
        async def scripted() -> AsyncIterator[Any]:
            async with ScriptedDispatcher(contract_handler, methods=METHODS, capacity=CAPACITY) as d:
                yield d
        return Adapter(name, tmp_path, contract_config(tmp_path), scripted, log=log)
    if name in ("local", "secrets", "subworkflow"):
        from gleitzeit_core.dispatch.local import LocalDispatcher
        from gleitzeit_core.providers.host import ProviderHost
        from gleitzeit_core.providers.manifest import load_manifest
        from gleitzeit_core.secret_fill import SecretsDispatcher
        from gleitzeit_core.subworkflow_dispatch import GroupDispatcher

        wrap: Callable[[Any], Any] = {"local": lambda d: d, "secrets": lambda d: SecretsDispatcher(d, {"TOKEN": SECRET}),
                                      "subworkflow": GroupDispatcher}[name]

        @asynccontextmanager
        async def local() -> AsyncIterator[Any]:
            # the wrapper alone is entered: it must enter (start) and exit (stop) the host itself
            async with wrap(LocalDispatcher(ProviderHost([load_manifest(MANIFEST)], log_level="warning"))) as d:
                yield d
        return Adapter(name, tmp_path, contract_config(tmp_path), local, log=log,
                       wrap=None if name == "local" else wrap)
    url = request.getfixturevalue("redis_url")
    pool_factory = request.getfixturevalue("pool_factory")
    pool = pool_factory(url)
    pool.start("w1", "contract", concurrency=CAPACITY, manifest=MANIFEST)

    @asynccontextmanager
    async def pooled() -> AsyncIterator[Any]:
        from gleitzeit_core.dispatch.redis import RedisDispatcher

        pool.wait_live("w1")
        async with RedisDispatcher(url) as d:
            yield d
    config = contract_config(tmp_path, **{"persistence.backend": "redis", "persistence.redis.url": url})
    return Adapter(name, tmp_path, config, pooled, pool=pool, log=log)

