"""``python -m benchmarks [--quick] [--no-peers] [--only N] [--peer-python SYSTEM=PYTHON] [--save | --out DIR]``:
run every scenario (or those numbered N), print the tables and issue 18's targets, write results only when asked.

A peer that is not installed (``pip install -e .[bench]``) is skipped with a
printed note; a measurement that fails becomes a row saying so, and the
rest still runs. ``--peer-python airflow=VENV/bin/python`` runs a peer with
another interpreter (Airflow 3 and Prefect 3.9 do not install together).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.peers import missing
from benchmarks.plan import FULL, PEERS, QUICK, Item, plan
from benchmarks.report import machine, markdown, row_for, write_results
from benchmarks.targets import SCENARIO, Measured

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parent.parent


def run_item(item: Item) -> dict[str, Any]:
    """Run one worker process; its last stdout line is its JSON result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(item.argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=item.timeout)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {tail[:200]}")
    return json.loads(lines[-1])


def measure(item: Item) -> dict[str, Any]:
    """A peer gets one retry: Prefect's own SQLite sometimes fails a run with "database is locked"
    under load (PrefectHQ/prefect#18934); the row then says so."""
    try:
        return run_item(item)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        if item.peer is None:
            raise
        return {**run_item(item), "retried": str(exc)[:120]}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one repetition (about a minute)")
    ap.add_argument("--no-peers", action="store_true", help="Gleitzeit only")
    ap.add_argument("--only", action="append", metavar="N", help="only scenario N (repeatable), e.g. --only 8")
    ap.add_argument("--peer-python", action="append", default=[], metavar="SYSTEM=PYTHON", type=peer_python,
                    help="run this peer with that interpreter, e.g. airflow=/venvs/airflow/bin/python")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--save", dest="out", action="store_const", const=RESULTS,
                       help=f"write the results into {RESULTS} (the published ones)")
    where.add_argument("--out", type=Path, default=None, help="write the results into this folder")
    args = ap.parse_args()
    command = "python -m benchmarks" + "".join(f" {a}" for a in sys.argv[1:])
    info = {**machine(), "date": time.strftime("%Y-%m-%d")}
    m = Measured()
    pythons = dict(args.peer_python)
    cache: dict[tuple[str, ...], dict[str, Any]] = {}
    skipped = set()
    for item in plan(QUICK if args.quick else FULL, peers=not args.no_peers, pythons=pythons):
        if args.only and not wanted(item, args.only):
            continue
        if item.peer and (gone := missing(item.peer, item.argv[0])):
            if item.peer not in skipped:
                print(f"note: skipping {item.peer}: {', '.join(gone)} not installed (pip install -e .[bench])")
                skipped.add(item.peer)
            continue
        print(f"… {item.scenario}: {item.system}: {shlex.join(item.argv[1:])}", file=sys.stderr, flush=True)
        note = ""
        try:
            out = cache.get(item.argv) or measure(item)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"note: {item.scenario} / {item.system} failed: {exc}")
            m.rows.append(row_for(item, None, f"failed: {exc}"))
            continue
        cache[item.argv] = out
        info["versions"].update(out.get("versions") or {})  # a peer run by another interpreter (--peer-python)
        if out.get("retried"):
            note = f"first attempt failed ({out['retried']}); retried once"
            print(f"note: {item.scenario} / {item.system}: {note}")
        if item.kind == "floors":
            m.floors = out
        elif item.kind == "sdk":
            m.sdk = out
        elif item.kind == "scale":
            m.scale.append(out)
        elif item.kind == "distributed":
            m.distributed = out
        else:
            m.raw.append({"scenario": item.scenario, "system": item.system, **out})
            m.rows.append(row_for(item, out, note))
    info["load_avg_end"] = os.getloadavg()
    print(markdown(info, m, command))
    if args.out is not None:  # a run leaves the work tree as it was unless asked to publish
        json_path, md_path = write_results(args.out, info, m, command)
        print(f"wrote {json_path} and {md_path}")


def peer_python(text: str) -> tuple[str, str]:
    system, sep, python = text.partition("=")
    if not sep or system not in PEERS or not python:
        raise argparse.ArgumentTypeError(f"expected SYSTEM=PYTHON with SYSTEM one of {', '.join(PEERS)}")
    return system, python


def wanted(item: Item, only: list[str]) -> bool:
    """Scenario N was asked for; the floors come with the targets set beside them (1, 2, 8)."""
    number = item.scenario.split()[0]
    return number in only or (item.kind == "floors" and bool({"1", "2", SCENARIO.split()[0]} & set(only)))


if __name__ == "__main__":
    main()
