"""Scenario 11, issue 18 "Scale": a 100,000-task workflow validated by the real command, and
10 MB handed to a python/execute task through ``${…}`` in its code against through ``context``.

``python -m benchmarks.scale validate N`` generates the layered DAG (``benchmarks.shapes``) as
JSON and as YAML and times ``gleitzeit validate FILE --json`` on each: wall, CPU (user + system
of the child) and its peak RSS. ``python -m benchmarks.scale bigvalue MB`` runs two 2-task
workflows in-process (a producer returns a table of about MB megabytes; the consumer reads it
in its code, or through ``context``) and reports the wall time of each run. One JSON line each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.shapes import build

#: issue 18's targets for validating 100,000 tasks
VALIDATE_S, VALIDATE_MB = 3.0, 300.0


def write_files(n: int, home: Path) -> None:
    from benchmarks.gleitzeit_worker import workflow_text

    text = workflow_text(build("layered", n), "noop")
    (home / "wf.json").write_text(text)
    (home / "wf.yaml").write_text(yaml.safe_dump(json.loads(text), sort_keys=False, width=200))


def validate(n: int, home: Path) -> dict[str, Any]:
    from benchmarks.gleitzeit_worker import register_noop

    exe = shutil.which("gleitzeit")
    if exe is None:
        raise RuntimeError("the `gleitzeit` command is not on PATH (pip install -e .)")
    # written by a child: a process forked from this one would start with its peak RSS (Linux keeps
    # the high-water mark across fork and exec), so this one stays small
    subprocess.run([sys.executable, "-m", "benchmarks.scale", "files", str(n), str(home)], check=True, timeout=600)
    files = {"json": home / "wf.json", "yaml": home / "wf.yaml"}
    env = {**os.environ, "GLEITZEIT_HOME": str(home)}
    register_noop(exe, env)
    out: dict[str, Any] = {"tasks": max(1, n // 100) * 100}  # layered(n): n // 100 layers of 100
    for fmt, path in files.items():
        with open(home / "out.txt", "wb") as sink:
            t0 = time.perf_counter()
            child = subprocess.Popen([exe, "validate", str(path), "--json"], env=env, stdout=sink,
                                     stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU and peak RSS
            wall = time.perf_counter() - t0
            child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise RuntimeError(f"validate exited {child.returncode}: {(home / 'out.txt').read_text()[-300:]}")
        out[fmt] = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
                    "bytes": path.stat().st_size}
    return out


def big_value(mb: int, reps: int, home: Path) -> dict[str, Any]:
    import anyio

    from benchmarks.gleitzeit_worker import bench_config, bench_dispatcher, run_once
    from gleitzeit_core.workflow.loader import load_workflow_text

    rows = mb * 1024 * 1024 // 50  # ~50 bytes of JSON per row
    produce = {"name": "gen", "method": "python/execute",
               "params": {"code": f"result = [{{'id': i, 'name': 'row %d' % i, 'v': i * 0.5}} for i in range({rows})]"}}
    consumers = {
        "ref in code": {"code": "data = ${gen.result.result}\nresult = len(data)"},
        "context": {"code": "result = len(context['data'])", "context": {"data": "${gen.result.result}"}},
    }
    config = bench_config(home, 4)

    async def main() -> dict[str, list[float]]:
        walls: dict[str, list[float]] = {k: [] for k in consumers}
        async with bench_dispatcher(config) as local:
            for rep in range(reps + 1):  # the first round warms the provider up
                for label, params in consumers.items():
                    doc = {"name": f"big value {label}", "tasks": [produce, {
                        "name": "use", "method": "python/execute", "params": params, "dependencies": ["gen"]}]}
                    wf = load_workflow_text(json.dumps(doc), filename="big.json")
                    wall, _ = await run_once(wf, config, local, "sqlite", home / f"big{rep}-{len(walls[label])}.db")
                    if rep:
                        walls[label].append(wall)
        return walls

    walls = anyio.run(main)
    ref, ctx = statistics.median(walls["ref in code"]), statistics.median(walls["context"])
    return {"mb": mb, "rows": rows, "walls_s": walls, "ref_s": ref, "context_s": ctx, "ratio": ref / ctx}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("validate").add_argument("tasks", type=int)
    files = sub.add_parser("files")  # validate's inputs, written in a child of its own
    files.add_argument("tasks", type=int)
    files.add_argument("dir", type=Path)
    bv = sub.add_parser("bigvalue")
    bv.add_argument("mb", type=int)
    bv.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if args.what == "files":
        write_files(args.tasks, args.dir)
        return
    with tempfile.TemporaryDirectory(prefix="gz-scale-") as tmp:
        home = Path(tmp)
        os.environ["GLEITZEIT_HOME"] = str(home)
        out = validate(args.tasks, home) if args.what == "validate" else big_value(args.mb, args.reps, home)
    sys.stdout.write(json.dumps({"kind": args.what, **out}) + "\n")


if __name__ == "__main__":
    main()
