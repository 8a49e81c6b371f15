"""One meaning for timeouts (PROTOCOL.md §2.2, README "Timeouts"), with the real Python provider.

The task's `timeout` is the attempt's deadline; `parameters.timeout` of python/execute is the
same number (the task's wins when both are given); the provider's default applies only when
the workflow gives none. The small-scale version of "a task with timeout: 100 and a 65 s sleep
fails at 60 s" with a fake provider whose default is 1 s is in test_wire_hostile.py.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.helpers.cli import gz


def test_task_timeout_and_parameter_timeout_are_one_number(tmp_path: Path):
    wf = tmp_path / "wf.yaml"
    wf.write_text(textwrap.dedent("""
        name: timeouts
        tasks:
          - name: task_timeout_wins
            method: python/execute
            timeout: 20
            parameters: {code: "import time; time.sleep(2); result = 'slept'", timeout: 1}
          - name: parameter_timeout_alone
            method: python/execute
            parameters: {code: "import time; time.sleep(20)", timeout: 1}
        """))
    r = gz(tmp_path / "home", "run", str(wf), "--json", timeout=120, GLEITZEIT_PERSISTENCE_BACKEND="memory")
    tasks = json.loads(r.out)["tasks"]
    assert tasks["task_timeout_wins"]["status"] == "completed", tasks["task_timeout_wins"]
    assert tasks["task_timeout_wins"]["result"]["result"] == "slept"
    assert tasks["parameter_timeout_alone"]["status"] == "failed"
    assert "timed out after 1 s" in tasks["parameter_timeout_alone"]["error"]
