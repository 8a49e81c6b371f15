"""`gleitzeit logs RUN [TASK] [--attempt N]`: what a run's attempts printed, from the store.

Built on the stdout/stderr each attempt record keeps (bounded, see
docs/persistence.md); no following of a live run yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import typer
from rich.text import Text

from gleitzeit_core.cli.app import EXIT_USAGE, BackendOpt, JsonOpt, fail, not_found, run_async, state
from gleitzeit_core.cli.render import emit
from gleitzeit_core.store.records import AttemptRecord, TaskRecord


@dataclass
class Printed:
    task: TaskRecord
    attempt: AttemptRecord


def printed_json(p: Printed) -> dict[str, Any]:
    return {"task": p.task.name, "task_id": p.task.id, "attempt": p.attempt.number,
            "status": p.attempt.status.value, "stdout": p.attempt.stdout, "stderr": p.attempt.stderr}


def pick(tasks: list[TaskRecord], wanted: str) -> TaskRecord | None:
    """A task by its name, its key in the workflow, or its record id."""
    return next((t for t in tasks if wanted in (t.name, t.key, t.id)), None)


def register(app: typer.Typer) -> None:
    @app.command("logs")
    def logs(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run (from `workflow list`)."),
        task: Optional[str] = typer.Argument(None, metavar="[TASK]", help="Only this task (name, key or id)."),
        attempt: Optional[int] = typer.Option(None, "--attempt", min=1, help="Only this attempt number."),
        backend: BackendOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Print what each attempt of a run (or of one task) wrote to stdout and stderr.

        Example: gleitzeit logs run-1a2b3c4d5e6f "Process Data" --attempt 2
        """
        st = state(ctx, json=json_out, backend=backend)

        async def go() -> list[Printed]:
            async with st.store() as store:
                run = await store.get_run(run_id)
                if run is None:
                    not_found(f"no run with id {run_id!r} in the {store.kind} store at {store.address}")
                tasks = await store.list_tasks(run_id=run_id)
                if task is not None:
                    one = pick(tasks, task)
                    if one is None:
                        names = ", ".join(repr(t.name) for t in tasks[:20])
                        fail(f"run {run_id} has no task {task!r}; its tasks: {names}", EXIT_USAGE)
                    tasks = [one]
                found = []
                for t in tasks:
                    for a in await store.get_attempts(t.id):
                        if attempt is None or a.number == attempt:
                            found.append(Printed(t, a))
                return found

        found = run_async(go)

        def human() -> None:
            if not found:
                st.console.print("no attempts" + (f" numbered {attempt}" if attempt else ""))
            for p in found:
                st.console.rule(f"{p.task.name} · attempt {p.attempt.number} ({p.attempt.status.value})",
                                align="left", style="bold")
                if not (p.attempt.stdout or p.attempt.stderr):
                    st.console.print(Text("(printed nothing)", style="dim"))
                for stream in ("stdout", "stderr"):
                    text = getattr(p.attempt, stream)
                    if text:
                        st.console.print(Text(f"[{stream}]", style="dim"))
                        st.console.print(Text(text.rstrip("\n"), style="red" if stream == "stderr" else ""),
                                         soft_wrap=True)

        emit(st.json, [printed_json(p) for p in found], human)
