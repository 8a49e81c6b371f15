"""scripts/test, the README's one test command: on a machine missing a Debian package it
cannot install, it names the package and stops before pytest (instead of dozens of
`redis-server not found` errors); .ci/run and the README use exactly it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.helpers.cli import REPO

SCRIPT = REPO / "scripts" / "test"


def tool_dir(tmp_path: Path, tools: list[str]) -> Path:
    """A PATH folder holding only `tools` (symlinks to the real ones)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} is needed to run this test"
        (folder / tool).symlink_to(real)
    return folder


def test_missing_package_without_apt_get_is_named_and_nothing_runs(tmp_path: Path) -> None:
    # node, npm, openssl, chromium and dpkg are there; redis-server and apt-get are not.
    path = tool_dir(tmp_path, ["bash", "dirname", "id", "dpkg", "dpkg-query", "node", "npm", "openssl", "python3",
                               "chromium", "chromedriver"])
    proc = subprocess.run([str(SCRIPT), "--collect-only"], env={"PATH": str(path), "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc
    assert "missing: redis-server\n" in proc.stderr
    assert "apt-get install redis-server" in proc.stderr
    assert proc.stdout == ""  # neither pip nor pytest ran


def test_ci_and_readme_run_exactly_the_script() -> None:
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == "exec ./scripts/test"
    assert os.access(SCRIPT, os.X_OK)
    readme = (REPO / "README.md").read_text()
    tests_section = readme[readme.index("## Tests"):]
    assert re.search(r"```bash\n\./scripts/test\n```", tests_section)
