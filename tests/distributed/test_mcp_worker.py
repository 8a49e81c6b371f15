"""An MCP server served by a `gleitzeit worker`, like any provider."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import yaml

from tests.distributed.conftest import Pool, wait_for


def test_a_worker_serves_an_mcp_server(tmp_path: Path, pool: Pool):
    server = shutil.which("mcp-server-time", path=os.path.dirname(sys.executable))
    assert server, "mcp-server-time is missing: pip install -e '.[dev]'"
    manifest = tmp_path / "clock.yaml"
    manifest.write_text(yaml.safe_dump({"name": "clock", "kind": "mcp", "command": server, "max_in_flight": 2}))
    pool.start("mcp", "clock", manifest=str(manifest))
    pool.wait_live("mcp")
    wf = tmp_path / "wf.yaml"
    wf.write_text("""name: distributed clock
tasks:
  - name: Tokyo
    method: clock/get_current_time
    parameters: {timezone: Asia/Tokyo}
  - name: Convert
    method: clock/convert_time
    dependencies: [Tokyo]
    parameters: {source_timezone: Asia/Tokyo, time: "12:00", target_timezone: "${Tokyo.result.timezone}"}
  - name: Bad
    method: clock/get_current_time
    parameters: {timezone: 7}
""")
    invalid = pool.gz("run", str(wf), "--distributed")
    # checked against the descriptors the worker published
    assert invalid.code == 2 and "'timezone'" in invalid.err and "7 is not of type 'string'" in invalid.err
    wf.write_text(wf.read_text().split("  - name: Bad")[0])
    r = pool.gz("run", str(wf), "--distributed", "--json")
    assert r.code == 0, r.err
    tasks = r.json()["tasks"]
    assert tasks["Tokyo"]["result"]["timezone"] == "Asia/Tokyo"
    assert tasks["Convert"]["result"]["time_difference"] == "+0.0h"
    live = wait_for(lambda: (lambda w: w if w and w["mcp"]["done"] == 2 else None)(pool.live()), 10, "counters")
    assert live["mcp"]["capacity"] == {"clock/v1": 2}
