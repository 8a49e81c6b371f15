"""A private GLEITZEIT_HOME per test, and the counting provider registered in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
