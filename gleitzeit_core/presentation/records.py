"""Records as people and programs see them: one-line result previews, timestamps, and the
stable ``--json`` shapes of runs, tasks and attempts.

Below both faces that show them, the CLI (``cli/render.py``) and the dashboard (``ui/``), so
neither imports the other and both print the same shapes.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from gleitzeit_core.store.records import AttemptRecord, RunRecord, TaskRecord


def result_preview(result: Any, width: int = 80) -> str:
    """One line of a result: the value a person cares about (`result` of a Python
    task, `content` of an LLM answer), else the whole object, as compact JSON."""
    if isinstance(result, dict):
        for key in ("result", "content"):
            if key in result:
                result = result[key]
                break
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def iso(ts: float | None) -> str | None:
    """UNIX seconds -> ISO 8601 UTC, the timestamp format of every --json shape."""
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def local_time(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def run_json(run: RunRecord) -> dict[str, Any]:
    """The stable `--json` shape of a run record (without its tasks)."""
    return {
        "run_id": run.run_id, "workflow_id": run.workflow_id, "name": run.workflow_name,
        "status": run.status.value, "error": run.error, "workflow_path": run.workflow_path,
        "created_at": iso(run.created_at), "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
        "cancel_requested": run.cancel_requested, "duration_s": run.elapsed(),
        "owner": {"host": run.owner_host, "pid": run.owner_pid} if run.owner_pid else None,
    }


def attempt_json(a: AttemptRecord) -> dict[str, Any]:
    return {"number": a.number, "status": a.status.value, "started_at": iso(a.started_at),
            "finished_at": iso(a.finished_at),
            "duration_s": None if a.finished_at is None else a.finished_at - a.started_at,
            "error": a.error, "stdout": a.stdout, "stderr": a.stderr}


def task_json(t: TaskRecord, attempts: list[AttemptRecord] | None = None) -> dict[str, Any]:
    """The stable `--json` shape of a task record; ``attempts`` only where the command loads them."""
    out = {
        "id": t.id, "run_id": t.run_id, "key": t.key, "name": t.name, "workflow_name": t.workflow_name,
        "protocol": t.protocol, "method": t.method, "status": t.status.value, "priority": t.priority,
        "attempts": t.attempts, "result": t.result, "error": t.error,
        "created_at": iso(t.created_at), "started_at": iso(t.started_at), "finished_at": iso(t.finished_at),
        "duration_s": t.elapsed(), "result_blob": t.result_blob,
        "cached": t.cached_from is not None, "cached_from": t.cached_from,
    }
    if attempts is not None:
        out["attempt_history"] = [attempt_json(a) for a in attempts]
    return out
