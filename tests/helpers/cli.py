"""Run the real `gleitzeit` executable in a private GLEITZEIT_HOME."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# No workspace quota: python tasks write the run's workspace directly, so a test can watch a task's
# marker files appear while it runs (and find them after killing the engine). With the quota
# (the default) a task's changes reach the workspace when it ends (docs/security.md, "Disk quota").
LIVE_WORKSPACE = {"GLEITZEIT_SANDBOX_MAX_DISK_MB": "0"}


def gleitzeit_argv() -> list[str]:
    exe = shutil.which("gleitzeit")
    return [exe] if exe else [sys.executable, "-m", "gleitzeit_core.cli.main"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLEITZEIT_")}
    env["GLEITZEIT_HOME"] = str(home)
    env.update(extra)
    return env


def gz(home: Path, *args: str, cwd: Path | None = None, timeout: float = 120, input: str | None = None,
       **env: str) -> Result:
    proc = subprocess.run([*gleitzeit_argv(), *args], cwd=cwd or REPO, env=cli_env(home, **env),
                          capture_output=True, text=True, timeout=timeout, input=input)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def spawn(home: Path, *args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen:
    return subprocess.Popen([*gleitzeit_argv(), *args], cwd=cwd or REPO, env=cli_env(home, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
