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
from benchmarks.scale import VALIDATE_MB, VALIDATE_S
from benchmarks.targets import targets_table

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


def sdk_table(sdk: dict[str, Any]) -> str:
    """Scenario 9: provider CPU per trivial request, the SDK against a bare echo child (same run)."""
    if not sdk:
        return ""
    return "\n".join([
        f"| 9: provider CPU per trivial request ({sdk['requests']:,} requests, {sdk['in_flight']} in flight) "
        "| CPU ms/request | ÷ floor |",
        "|---|--:|--:|",
        f"| no-op provider on the Python SDK | {sdk['sdk_cpu_ms_per_request']:.3f} | {sdk['ratio']:.1f}× |",
        f"| floor: bare stdlib echo child (parse a line, answer it) | {sdk['echo_cpu_ms_per_request']:.3f} | 1× |",
    ])


def scale_table(scale: list[dict[str, Any]], rows: list[Row]) -> str:
    """Scenario 11: validating N tasks against issue 18's targets, the run's per-task cost as
    tasks grow (scenario 4's rows), and a big value through ``${…}`` against through ``context``."""
    lines = ["| 11: scale | value | target | met |", "|---|--:|--:|---|"]
    for out in scale:
        if out.get("kind") == "validate":
            for fmt in ("json", "yaml"):
                r = out[fmt]
                lines.append(f"| validate {out['tasks']:,} tasks ({fmt.upper()}, {r['bytes'] / 1e6:.1f} MB): wall s / CPU s "
                             f"| {r['wall_s']:.2f} / {r['cpu_s']:.2f} | ≤ {VALIDATE_S:g} s | "
                             f"{'yes' if r['cpu_s'] <= VALIDATE_S else 'no'} (CPU) |")
                lines.append(f"| validate {out['tasks']:,} tasks ({fmt.upper()}): peak RSS MB | {r['peak_rss_mb']:.0f} "
                             f"| ≤ {VALIDATE_MB:g} | {'yes' if r['peak_rss_mb'] <= VALIDATE_MB else 'no'} |")
        elif out.get("kind") == "bigvalue":
            lines.append(f"| {out['mb']} MB into python/execute: via `${{…}}` in code ÷ via `context` (run wall, "
                         f"{out['ref_s']:.2f} s / {out['context_s']:.2f} s) | {out['ratio']:.2f}× | ≤ 1 (± noise) "
                         f"| {'yes' if out['ratio'] <= 1.1 else 'no'} |")
    layered = sorted((r for r in rows if r.scenario.startswith("4 ") and r.per_task_ms), key=lambda r: r.tasks or 0)
    for backend in ("sqlite", "memory"):
        runs = [r for r in layered if r.backend == backend]
        if len(runs) >= 2:
            small, big = runs[0], runs[-1]
            lines.append(f"| run, no-op/{backend}: per-task {big.tasks:,} ÷ per-task {small.tasks:,} "
                         f"({big.per_task_ms:.3f} / {small.per_task_ms:.3f} ms) | {big.per_task_ms / small.per_task_ms:.2f}× "
                         f"| flat (≈ 1) | {'yes' if big.per_task_ms / small.per_task_ms <= 1.5 else 'no'} |")
            lines.append(f"| run {big.tasks:,} tasks, no-op/{backend}: engine peak RSS MB | {_f(big.rss_mb, 0)} | < 500 "
                         f"| {'yes' if big.rss_mb is not None and big.rss_mb < 500 else 'no'} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def markdown(info: dict[str, Any], rows: list[Row], floors: dict[str, list[float]], command: str,
             raw: list[dict[str, Any]] = (), sdk: dict[str, Any] | None = None,
             scale: list[dict[str, Any]] = ()) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    floor_names = tuple(k for k in floors if k not in SCENARIO5_ROWS)
    return "\n\n".join([
        f"# Benchmark results ({info['date']}, {info['host']})",
        f"`{command}` — {info['cores']} cores ({info['cpu']}), Python {info['python']}; {versions}. "
        f"Load average at start {', '.join(f'{x:.2f}' for x in info['load_avg_start'])}, "
        f"at end {', '.join(f'{x:.2f}' for x in info['load_avg_end'])}.",
        runs_table(rows),
        latency_table(floors, SCENARIO5_ROWS, "5: python/execute latency (trivial code)"),
        latency_table(floors, floor_names, "7: floors"),
        targets_table(list(raw), floors),
        *filter(None, [sdk_table(sdk or {}), scale_table(list(scale), rows)]),
    ]) + "\n"


def write_results(out_dir: Path, info: dict[str, Any], rows: list[Row], floors: dict[str, list[float]],
                  raw: list[dict[str, Any]], command: str, sdk: dict[str, Any] | None = None,
                  scale: list[dict[str, Any]] = ()) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{info['date']}-{info['host']}"
    summary = {name: {"samples": len(s), "median_ms": statistics.median(s),
                      "p95_ms": sorted(s)[min(len(s) - 1, int(len(s) * 0.95))], "min_ms": min(s)}
               for name, s in floors.items() if s}
    data = {"command": command, "machine": info, "finished_at": time.time(),
            "rows": [{**r.__dict__, "per_task_ms": r.per_task_ms, "tasks_per_s": r.tasks_per_s} for r in rows],
            "latencies": summary, "sdk_cpu": sdk or {}, "scale": list(scale), "raw": raw}
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    md_path.write_text(markdown(info, rows, floors, command, raw, sdk, scale))
    return json_path, md_path
