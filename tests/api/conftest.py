"""A private GLEITZEIT_HOME per test, and the counting provider registered in it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

import anyio
import pytest
import yaml

import gleitzeit_core as gz

COUNTING = Path(__file__).with_name("counting_provider.py")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [n for n in __import__("os").environ if n.startswith("GLEITZEIT_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("GLEITZEIT_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def starts(home: Path) -> Path:
    """The file the counting provider appends its pid to on every start (one line per process)."""
    providers = home / "providers"
    providers.mkdir(parents=True)
    log = home.parent / "starts.txt"
    log.touch()
    manifest = {"name": "counting", "command": "{python}", "args": [str(COUNTING), str(log)],
                "protocols": ["count/v1"], "startup_timeout": 30}
    (providers / "counting.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return log


def started(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()]


def pid_workflow(name: str = "pid") -> gz.Workflow:
    return gz.Workflow(name=name, tasks=[gz.Task(name="pid", method="count/pid")])


SLOW = gz.Workflow(name="slow", tasks=[gz.Task(name="slow", method="count/sleep", parameters={"seconds": 600})])


@dataclass
class Running:
    """An ``on_event`` callback that notes the run id once a task is running."""

    started: anyio.Event = field(default_factory=anyio.Event)
    run_ids: list[str] = field(default_factory=list)

    def __call__(self, event: gz.Event) -> None:
        if isinstance(event, gz.TaskUpdated) and event.task.status is gz.TaskStatus.RUNNING:
            self.run_ids.append(event.task.run_id)
            self.started.set()


@asynccontextmanager
async def slow_run(engine: gz.ExecutionEngine) -> AsyncIterator[tuple[str, list[gz.RunResult]]]:
    """Runs ``SLOW`` on ``engine`` and yields its run id once its task is running, and the
    list its result is appended to when the run ends (after the block: the block must end
    the run, e.g. by cancelling it)."""
    on_event = Running()
    results: list[gz.RunResult] = []
    with anyio.fail_after(60):  # hang guard; the engine checks the cancel flag once a second
        async with anyio.create_task_group() as tg:
            async def go() -> None:
                results.append(await engine.run(SLOW, on_event=on_event))

            tg.start_soon(go)
            await on_event.started.wait()
            yield on_event.run_ids[0], results
