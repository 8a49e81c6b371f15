"""Turning worker outputs into rows, the markdown table, and the results files."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.plan import Item
from benchmarks.targets import Measured, summary, summary_table, targets_table

SCENARIO5_ROWS = ("python/execute via sandboxed provider", "python -c per call (fresh interpreter)")


@dataclass
class Row:
    scenario: str
    system: str
    tasks: int | None = None
    reps: int = 0
    wall_s: float | None = None  # median
    cpu_ms: float | None = None  # engine CPU per task (Gleitzeit in-process runs)
    rss_mb: float | None = None
    note: str = ""
    shape: str = ""
    backend: str = ""
    provider: str = ""

    @property
    def per_task_ms(self) -> float | None:
        return None if self.wall_s is None or not self.tasks else self.wall_s / self.tasks * 1000

    @property
    def tasks_per_s(self) -> float | None:
        return None if not self.wall_s or not self.tasks else self.tasks / self.wall_s


def row_for(item: Item, out: dict[str, Any] | None, note: str = "") -> Row:
    row = Row(item.scenario, item.system, note="; ".join(x for x in (item.note, note) if x), **item.tags)
    if out is None:
        return row
    row.tasks, row.reps = out["tasks"], len(out["walls_s"])
    row.wall_s = statistics.median(out["walls_s"])
    row.rss_mb = out.get("peak_rss_mb")  # absent for the CLI rows (a child process)
    if "engine_cpu_s_per_rep" in out:
        row.cpu_ms = out["engine_cpu_s_per_rep"] / out["tasks"] * 1000
    return row


def _f(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def ratio_column(rows: list[Row]) -> dict[int, str]:
    """Peer per-task ÷ Gleitzeit's (python/sqlite and no-op/sqlite) on the same shape."""
    ref: dict[tuple[str, str], float] = {}
    for r in rows:
        if r.system.startswith("gleitzeit") and r.backend == "sqlite" and r.shape and r.per_task_ms:
            ref.setdefault((r.shape, r.provider), r.per_task_ms)
    out = {}
    for i, r in enumerate(rows):
        if r.system.startswith("gleitzeit") or not r.per_task_ms or not r.shape:
            continue
        parts = [f"{r.per_task_ms / ref[(r.shape, p)]:.2g}×" if (r.shape, p) in ref else "–" for p in ("python", "noop")]
        out[i] = " / ".join(parts)
    return out


def runs_table(rows: list[Row]) -> str:
    ratios = ratio_column(rows)
    lines = [
        "| scenario | system | tasks | reps | wall s (median) | per task ms | tasks/s | engine CPU ms/task "
        "| peak RSS MB | peer per-task ÷ Gleitzeit SQLite per-task (python / no-op; > 1: Gleitzeit faster) | note |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for i, r in enumerate(rows):
        lines.append(
            f"| {r.scenario} | {r.system} | {'' if r.tasks is None else f'{r.tasks:,}'} | {r.reps or ''} "
            f"| {_f(r.wall_s, 3)} | {_f(r.per_task_ms, 3)} | {_f(r.tasks_per_s, 0)} | {_f(r.cpu_ms, 3)} "
            f"| {_f(r.rss_mb, 0)} | {ratios.get(i, '')} | {r.note} |"
        )
    return "\n".join(lines)


def latency_table(samples: dict[str, list[float]], names: tuple[str, ...], title: str) -> str:
    lines = [f"| {title} | samples | median ms | p95 ms | min ms |", "|---|--:|--:|--:|--:|"]
    for name in names:
        s = sorted(samples.get(name) or [])
        if s:
            p95 = s[min(len(s) - 1, int(len(s) * 0.95))]
            lines.append(f"| {name} | {len(s)} | {statistics.median(s):.3f} | {p95:.3f} | {s[0]:.3f} |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    return {
        "host": socket.gethostname(), "cores": os.cpu_count(), "cpu": _cpu_model(),
        "python": sys.version.split()[0], "platform": platform.platform(), "load_avg_start": os.getloadavg(),
        "versions": {p: _version(p) for p in ("gleitzeit", "anyio", "redis", "prefect", "dask", "distributed",
                                                         "dagster", "luigi", "apache-airflow")},
    }


def markdown(info: dict[str, Any], m: Measured, command: str) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    floor_names = tuple(k for k in m.floors if k not in SCENARIO5_ROWS)
    tables = [runs_table(m.rows), latency_table(m.floors, SCENARIO5_ROWS, "5: python/execute latency (trivial code)"),
              latency_table(m.floors, floor_names, "7: floors"), targets_table(m.raw, m.floors)]
    return "\n\n".join([
        f"# Benchmark results ({info['date']}, {info['host']})",
        f"`{command}` — {info['cores']} cores ({info['cpu']}), Python {info['python']}; {versions}. "
        f"Load average at start {', '.join(f'{x:.2f}' for x in info['load_avg_start'])}, "
        f"at end {', '.join(f'{x:.2f}' for x in info['load_avg_end'])}.",
        *(t for t in tables if t.count("\n") >= 2),  # a table with no row (not run with --only) is left out
        "## Issue 18 targets\n\n" + summary_table(summary(m)),
    ]) + "\n"


def write_results(out_dir: Path, info: dict[str, Any], m: Measured, command: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{info['date']}-{info['host']}"
    summary_ms = {name: {"samples": len(s), "median_ms": statistics.median(s),
                         "p95_ms": sorted(s)[min(len(s) - 1, int(len(s) * 0.95))], "min_ms": min(s)}
                  for name, s in m.floors.items() if s}
    data = {"command": command, "machine": info, "finished_at": time.time(),
            "rows": [{**r.__dict__, "per_task_ms": r.per_task_ms, "tasks_per_s": r.tasks_per_s} for r in m.rows],
            "latencies": summary_ms, "sdk_cpu": m.sdk, "scale": m.scale, "distributed": m.distributed,
            "targets": [{**t.__dict__, "status": t.status.value} for t in summary(m)], "raw": m.raw}
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    md_path.write_text(markdown(info, m, command))
    return json_path, md_path
