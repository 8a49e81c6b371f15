"""examples/mcp.yaml and the setup docs/mcp.md prints, run as written."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from tests.helpers.cli import REPO, gz
from tests.mcp.conftest import NPM_PREFIX


def test_the_example_runs_as_docs_mcp_md_says(home: Path, everything: str, time_server: str):
    # The servers are installed where `pip install` and `npm install -g` would put them on PATH.
    path = os.pathsep.join([os.path.dirname(sys.executable), str(NPM_PREFIX / "node_modules" / ".bin"),
                            os.environ["PATH"]])
    doc = (REPO / "docs" / "mcp.md").read_text()
    setup = re.search(r"```sh\n(.*?)```", doc, re.S).group(1).splitlines()
    assert setup == ["pip install mcp-server-time", "npm install -g @modelcontextprotocol/server-everything",
                     "gleitzeit provider add examples/providers/mcp/claude_desktop_config.json",
                     "gleitzeit run examples/mcp.yaml"]
    added = gz(home, *setup[2].split()[1:], PATH=path)
    assert added.code == 0, added.err
    r = gz(home, *setup[3].split()[1:], "--json", PATH=path)
    assert r.code == 0, r.err
    tasks = r.json()["tasks"]
    report = tasks["Report"]["result"]["result"]
    assert report["berlin"] == tasks["Berlin"]["result"]["datetime"]
    assert report["tokyo at 9 in berlin"].startswith(tasks["Meeting"]["result"]["target"]["datetime"][:10])
    assert report["sum"] == "The sum of 19 and 23 is 42."
    assert report["slow"] == "Long running operation completed. Duration: 2 seconds, Steps: 4."
