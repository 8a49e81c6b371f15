"""A pool of real `gleitzeit worker` subprocesses on a real redis-server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis

from tests.helpers.cli import LIVE_WORKSPACE, REPO, gz, spawn
from tests.helpers.procs import alive, descendants
from tests.helpers.wait import wait_for  # noqa: F401  (the pool tests import it from here)

NODE_MANIFEST = str(REPO / "examples" / "providers" / "node" / "manifest.yaml")


def started_run_id(proc: subprocess.Popen) -> str:
    seen = []
    for line in proc.stderr:  # log lines (--debug) may come first
        m = re.search(r"run (run-[0-9a-f]+) started", line)
        if m:
            return m.group(1)
        seen.append(line)
    raise AssertionError(f"no run id in {''.join(seen)!r}")


@dataclass
class Pool:
    """Workers started by a test; all of them (and their providers) are killed at the end."""

    home: Path
    url: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"GLEITZEIT_PERSISTENCE_BACKEND": "redis", "GLEITZEIT_REDIS_URL": self.url,
                **LIVE_WORKSPACE}  # tests watch the tasks' marker files

    def start(self, name: str, providers: str, *, concurrency: int = 2, manifest: str | None = None) -> None:
        args = ["worker", "--name", name, "--providers", providers, "--concurrency", str(concurrency)]
        if manifest:
            args += ["--manifest", manifest]
        self.procs[name] = spawn(self.home, *args, **self.env)

    def live(self) -> dict[str, dict[str, Any]]:
        with redis.Redis.from_url(self.url) as r:
            out = {}
            for name in r.smembers("gleitzeit:workers"):
                raw = r.hgetall(b"gleitzeit:w:" + name)
                if raw:
                    out[name.decode()] = {k.decode(): json.loads(v) for k, v in raw.items()}
            return out

    def wait_live(self, *names: str, timeout: float = 30.0) -> None:
        def ready() -> bool:
            for n in names:
                p = self.procs[n]
                if p.poll() is not None:
                    raise AssertionError(f"worker {n} exited {p.returncode}: {p.stderr.read()}")
            return set(names) <= set(self.live())
        wait_for(ready, timeout, f"workers {names} to register")

    def kill9(self, name: str) -> None:
        """The machine is gone: the worker and its providers die at once."""
        proc = self.procs[name]
        family = descendants(proc.pid)
        for pid in [proc.pid, *family]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                family = descendants(proc.pid)
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
                for pid in family:
                    if alive(pid):
                        os.kill(pid, signal.SIGKILL)

    def gz(self, *args: str, timeout: float = 120) -> Any:
        return gz(self.home, *args, timeout=timeout, **self.env)

    def spawn(self, *args: str) -> subprocess.Popen:
        return spawn(self.home, *args, **self.env)


@pytest.fixture
def pool_factory(tmp_path: Path) -> Iterator[Callable[[str], Pool]]:
    pools: list[Pool] = []

    def make(url: str) -> Pool:
        home = tmp_path / f"home{len(pools)}"
        home.mkdir()
        pools.append(Pool(home, url))
        return pools[-1]

    yield make
    for p in pools:
        p.stop_all()


@pytest.fixture
def pool(pool_factory: Callable[[str], Pool], redis_url: str) -> Pool:
    return pool_factory(redis_url)
