"""What a person sees: the live view in a pseudo-terminal, plain lines in a pipe."""

from __future__ import annotations

import re
from pathlib import Path

import pexpect

from tests.cli.conftest import Cli, write
from tests.helpers.cli import REPO, cli_env, gleitzeit_argv, gz

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

WORKFLOW = """
    name: live demo
    tasks:
      - name: first
        method: python/execute
        params: {code: "print('hello from first'); result = 1"}
      - name: second
        method: python/execute
        dependencies: [first]
        params: {code: "for i in range(3): print(f'line {i}')\\nresult = ${first.result.result} + 1"}
"""


def test_watch_renders_table_and_output_then_ends_cleanly(home: Path, work: Path):
    wf = write(work, "live.yaml", WORKFLOW)
    argv = gleitzeit_argv()
    child = pexpect.spawn(argv[0], [*argv[1:], "run", str(wf), "--watch"], cwd=str(REPO),
                          env=cli_env(home, GLEITZEIT_PERSISTENCE_BACKEND="sqlite", TERM="xterm-256color"),
                          encoding="utf-8", dimensions=(40, 120), timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    screen = ANSI.sub("", child.before)
    assert child.exitstatus == 0, screen[-2000:]
    assert "live demo" in screen and "┃ task" in screen  # the table, titled with the workflow
    assert re.search(r"second\s+│\s+completed\s+│\s+1\s+│\s+\d+\.\d\ds", screen)  # status, attempt, duration
    assert "── output · second ──" in screen and "line 2" in screen  # the streamed output pane
    assert re.search(r"run run-[0-9a-f]+ completed\s*$", screen)  # the last thing printed
    assert "\x1b[?25h" in child.before  # the cursor is shown again


def test_pipe_gets_plain_progress_on_stderr_and_json_alone_on_stdout(home: Path, work: Path):
    cli = Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"})
    wf = write(work, "live.yaml", WORKFLOW)
    plain = cli.ok("run", str(wf), "--watch")
    assert "\x1b[" not in plain.out + plain.err  # no colours or cursor moves in a pipe
    assert re.search(r"\d\d:\d\d:\d\d second \| line 2", plain.err)  # --watch streams output as lines
    assert re.search(r"run run-[0-9a-f]+ completed", plain.out)
    quiet = cli.ok("run", str(wf), "--json")
    assert quiet.err == "" and quiet.json()["status"] == "completed"
    unknown = cli("run", str(wf), "--follow", "nobody")
    assert unknown.code == 2 and "--follow 'nobody'" in unknown.err


def test_ctrl_c_in_the_live_view_exits_130(home: Path, work: Path):
    wf = write(work, "nap.yaml", """
        name: nap
        tasks:
          - name: nap
            method: python/execute
            params: {code: "import time; print('napping'); time.sleep(60)"}
    """)
    argv = gleitzeit_argv()
    child = pexpect.spawn(argv[0], [*argv[1:], "run", str(wf), "--watch"], cwd=str(REPO),
                          env=cli_env(home, GLEITZEIT_PERSISTENCE_BACKEND="sqlite"), encoding="utf-8",
                          dimensions=(40, 120), timeout=120)
    child.expect("napping")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "interrupted" in child.before


def test_a_thousand_task_run_in_a_terminal_finishes_and_shows_counts(home: Path, work: Path):
    """The live view in a real pseudo-terminal (it used to redraw a row per task on every
    event: such a run did not finish in 300 s). The timeout is only a hang guard."""
    from benchmarks.gleitzeit_worker import NOOP_MANIFEST, workflow_text
    from benchmarks.shapes import layered

    wf = work / "thousand.json"
    wf.write_text(workflow_text(layered(1000), "noop"))
    assert gz(home, "provider", "add", str(NOOP_MANIFEST)).code == 0  # a workflow may not bring it from elsewhere
    argv = gleitzeit_argv()
    child = pexpect.spawn(argv[0], [*argv[1:], "run", str(wf)], cwd=str(REPO),
                          env=cli_env(home, GLEITZEIT_PERSISTENCE_BACKEND="sqlite", TERM="xterm-256color"),
                          encoding="utf-8", dimensions=(40, 120), timeout=300, maxread=65536)
    child.expect(pexpect.EOF)
    child.close()
    screen = ANSI.sub("", child.before)
    assert child.exitstatus == 0, screen[-2000:]
    last_frame = screen[screen.rindex("bench layered 1,000"):]
    assert "1000/1000 done  ·  completed 1000" in last_frame
    assert len([ln for ln in last_frame.splitlines() if ln.startswith("│ l")]) <= 40  # what fits the screen
    assert re.search(r"run run-[0-9a-f]+ completed\s*$", screen)
