"""A real `gleitzeit ui` process over a real store (SQLite file or redis-server),
and real runs made by the real `gleitzeit run` next to it."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.cli.conftest import Cli, cli, home, store_env, work, write  # noqa: F401  (fixtures)
from tests.helpers.cli import REPO, cli_env, gleitzeit_argv, spawn
from tests.helpers.wait import wait_for

START_TIMEOUT_S = 60.0  # hang guard: the dashboard prints its URL within a second when idle
WAIT_S = 60.0


@dataclass
class Http:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Dashboard:
    """One `gleitzeit ui` process; ``url`` is what it printed."""

    def __init__(self, proc: subprocess.Popen, url: str):
        self.proc, self.url = proc, url.rstrip("/")

    def request(self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                timeout: float = WAIT_S) -> Http:
        req = urllib.request.Request(self.url + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Http(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            return Http(e.code, dict(e.headers), e.read())

    def get_json(self, path: str) -> Any:
        r = self.request(path)
        assert r.status == 200, (path, r.status, r.body[:500])
        return r.json()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_dashboard(home: Path, env: dict[str, str], *args: str) -> Dashboard:
    proc = subprocess.Popen([*gleitzeit_argv(), "ui", "--port", "0", *args], cwd=REPO, env=cli_env(home, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    guard = threading.Timer(START_TIMEOUT_S, proc.kill)  # hang guard for the blocking read
    guard.start()
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()  # the URL line, or EOF when it failed
    finally:
        guard.cancel()
    if "http://" not in line:
        proc.kill()
        raise AssertionError(f"gleitzeit ui did not start: {line!r}\n{proc.stderr.read() if proc.stderr else ''}")
    url = next(w for w in line.split() if w.startswith("http://"))
    return Dashboard(proc, url)


@pytest.fixture
def dashboard_factory(home: Path) -> Iterator[Callable[..., Dashboard]]:
    started: list[Dashboard] = []

    def start(env: dict[str, str], *args: str) -> Dashboard:
        d = start_dashboard(home, env, *args)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@contextlib.contextmanager
def running(cli: Cli, workflow: Path, **env: str) -> Iterator[subprocess.Popen]:
    """`gleitzeit run WORKFLOW --json` in the background; killed if the test leaves it running."""
    proc = spawn(cli.home, "run", str(workflow), "--json", **{**cli.env, **env})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def first_run_id(ui: Dashboard, status: str | None = None) -> str:
    """The newest run's id once one exists (with ``status``: once it has that status)."""
    return wait_for(lambda: [r["run_id"] for r in ui.get_json("/api/runs") if status in (None, r["status"])],
                    WAIT_S, what=f"a {status or ''} run")[0]


def gated(work: Path, name: str = "gated") -> tuple[Path, Path]:
    """A workflow whose first task runs until the test creates the gate file."""
    gate = work / f"{name}.gate"
    wf = write(work, f"{name}.yaml", f"""
        name: {name}
        tasks:
          - name: Wait
            method: python/execute
            params:
              code: "import os, time\\nwhile not os.path.exists(context['gate']): time.sleep(0.05)\\nresult = 'opened'"
              context: {{gate: "{gate}"}}
          - name: After
            method: python/execute
            dependencies: [Wait]
            params: {{code: "result = 2"}}
    """)
    return wf, gate


__all__ = ["Cli", "Dashboard", "cli", "first_run_id", "gated", "home", "running", "store_env", "wait_for", "work", "write"]
