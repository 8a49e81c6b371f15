"""``python -m benchmarks.live_view [--tasks N] [--reps R]``: the terminal's live view against `--json`.

The same no-op workflow (a layered DAG, ``benchmarks.shapes``) runs through the real
`gleitzeit run` twice: in a pseudo-terminal (40×120, the rich live view drawing) and
with ``--json`` (no view). The ratio of their wall times is the view's cost; the
target is at most 1.3× at 10,000 tasks (docs/performance.md). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pexpect

from benchmarks.gleitzeit_worker import NOOP_MANIFEST, workflow_text
from benchmarks.shapes import layered

TIMEOUT = 1800  # seconds; a hang guard, far above any expected run


def wall_json(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"--json run exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return wall


def wall_terminal(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    child = pexpect.spawn(argv[0], argv[1:], env={**env, "TERM": "xterm-256color"}, encoding="utf-8",
                          dimensions=(40, 120), timeout=TIMEOUT, maxread=65536)
    child.expect(pexpect.EOF)  # reads (and drops) every frame, as a terminal would
    child.close()
    wall = time.perf_counter() - t0
    if child.exitstatus != 0:
        raise RuntimeError(f"terminal run exited {child.exitstatus}: {child.before[-300:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.live_view", description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3, help="runs of each mode, alternating; the median counts")
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "memory"])
    args = ap.parse_args()
    exe = shutil.which("gleitzeit")
    if exe is None:
        raise SystemExit("the `gleitzeit` command is not on PATH (pip install -e .)")
    with tempfile.TemporaryDirectory(prefix="gz-bench-live-") as tmp:
        home = Path(tmp)
        wf = home / "live.json"
        wf.write_text(workflow_text(layered(args.tasks), "noop", manifest=NOOP_MANIFEST))
        env = {**os.environ, "GLEITZEIT_HOME": str(home), "GLEITZEIT_SQLITE_PATH": str(home / "live.db")}
        argv = [exe, "run", str(wf), "--backend", args.backend]
        walls: dict[str, list[float]] = {"terminal": [], "json": []}
        for _ in range(args.reps):
            walls["json"].append(wall_json(argv, env))
            walls["terminal"].append(wall_terminal(argv, env))
    median = {mode: statistics.median(w) for mode, w in walls.items()}
    ratio = median["terminal"] / median["json"]
    load = os.getloadavg()[0]
    print(f"{args.tasks:,} no-op tasks, {args.backend}, layered DAG; median of {args.reps}; load {load:.1f}\n")
    print("| mode | wall s (median) | runs | × `--json` |")
    print("|---|--:|---|--:|")
    for mode, label in (("json", "`gleitzeit run --json`"), ("terminal", "`gleitzeit run` in a 40×120 pty (live view)")):
        runs = ", ".join(f"{w:.2f}" for w in walls[mode])
        print(f"| {label} | {median[mode]:.2f} | {runs} | {median[mode] / median['json']:.2f} |")
    print(f"\nratio {ratio:.2f} (target ≤ 1.30)")


if __name__ == "__main__":
    main()
