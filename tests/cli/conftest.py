"""CLI tests: the real `gleitzeit` executable in a private GLEITZEIT_HOME, against
SQLite and a real redis-server (the session server of tests/conftest.py)."""

from __future__ import annotations

import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers.cli import Result, gz


def open_dir(prefix: str) -> Iterator[Path]:
    """A fresh folder outside pytest's 0700 tmp tree: sandboxed python tasks run as an
    unprivileged uid and must reach the run workspace and the workflow folder."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def home() -> Iterator[Path]:
    """GLEITZEIT_HOME of one test."""
    yield from open_dir("gz-cli-home-")


@pytest.fixture
def work() -> Iterator[Path]:
    """Working folder of one test: workflow files, scripts, generated templates."""
    yield from open_dir("gz-cli-work-")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(params=["sqlite", "redis"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment selecting the backend, as a user would (GLEITZEIT_* variables)."""
    if request.param == "sqlite":
        return {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"}
    return {"GLEITZEIT_PERSISTENCE_BACKEND": "redis", "GLEITZEIT_REDIS_URL": request.getfixturevalue("redis_url")}


class Cli:
    """`gleitzeit` bound to one home and environment."""

    def __init__(self, home: Path, env: dict[str, str], cwd: Path | None = None):
        self.home, self.env, self.cwd = home, env, cwd

    def __call__(self, *args: str, input: str | None = None, **env: str) -> Result:
        return gz(self.home, *args, cwd=self.cwd, input=input, **{**self.env, **env})

    def ok(self, *args: str, **env: str) -> Result:
        r = self(*args, **env)
        assert r.code == 0, f"gleitzeit {' '.join(args)} exited {r.code}:\n{r.err}\n{r.out}"
        return r


@pytest.fixture
def cli(home: Path, store_env: dict[str, str]) -> Cli:
    return Cli(home, store_env)


@pytest.fixture
def mem(home: Path, work: Path) -> Cli:
    """For commands whose behaviour does not depend on the backend; runs in ``work``."""
    return Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "memory"}, cwd=work)
