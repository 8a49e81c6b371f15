"""``python -m benchmarks.live_view [--tasks N] [--reps R]``: the terminal's live view against `--json`.

The same no-op workflow (a layered DAG, ``benchmarks.shapes``) runs through the real
`gleitzeit run` twice: in a pseudo-terminal (40×120, the rich live view drawing) and
with ``--json`` (no view). The ratio of their wall times is the view's cost; the
target is at most 1.3× at 10,000 tasks (docs/performance.md). The CPU time of each run
(gleitzeit and its providers, from the children's rusage) is printed too: on a shared,
loaded machine it varies far less than the wall time. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import pexpect

from benchmarks.gleitzeit_worker import register_noop, workflow_text
from benchmarks.shapes import layered

TIMEOUT = 1800  # seconds; a hang guard, far above any expected run


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_json(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"--json run exited {done.returncode}: {done.stderr.strip()[-300:]}")


def run_terminal(argv: list[str], env: dict[str, str]) -> None:
    child = pexpect.spawn(argv[0], argv[1:], env={**env, "TERM": "xterm-256color"}, encoding="utf-8",
                          dimensions=(40, 120), timeout=TIMEOUT, maxread=65536)
    child.expect(pexpect.EOF)  # reads (and drops) every frame, as a terminal would
    child.close()
    if child.exitstatus != 0:
        raise RuntimeError(f"terminal run exited {child.exitstatus}: {child.before[-300:]}")


def measured(run: Callable[[list[str], dict[str, str]], None], argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the run's processes)."""
    cpu0, t0 = children_cpu(), time.perf_counter()
    run(argv, env)
    return time.perf_counter() - t0, children_cpu() - cpu0


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
        wf.write_text(workflow_text(layered(args.tasks), "noop"))
        env = {**os.environ, "GLEITZEIT_HOME": str(home), "GLEITZEIT_SQLITE_PATH": str(home / "live.db")}
        register_noop(exe, env)
        argv = [exe, "run", str(wf), "--backend", args.backend]
        runs: dict[str, list[tuple[float, float]]] = {"terminal": [], "json": []}
        for _ in range(args.reps):
            runs["json"].append(measured(run_json, argv, env))
            runs["terminal"].append(measured(run_terminal, argv, env))
    wall = {mode: statistics.median(w for w, _ in r) for mode, r in runs.items()}
    cpu = {mode: statistics.median(c for _, c in r) for mode, r in runs.items()}
    load = os.getloadavg()[0]
    print(f"{args.tasks:,} no-op tasks, {args.backend}, layered DAG; median of {args.reps}; load {load:.1f}\n")
    print("| mode | wall s (median) | wall s (runs) | × `--json` | CPU s (median) | × `--json` |")
    print("|---|--:|---|--:|--:|--:|")
    for mode, label in (("json", "`gleitzeit run --json`"), ("terminal", "`gleitzeit run` in a 40×120 pty (live view)")):
        walls = ", ".join(f"{w:.2f}" for w, _ in runs[mode])
        print(f"| {label} | {wall[mode]:.2f} | {walls} | {wall[mode] / wall['json']:.2f} "
              f"| {cpu[mode]:.2f} | {cpu[mode] / cpu['json']:.2f} |")
    print(f"\nratio {wall['terminal'] / wall['json']:.2f} wall, {cpu['terminal'] / cpu['json']:.2f} CPU (target ≤ 1.30)")


if __name__ == "__main__":
    main()
