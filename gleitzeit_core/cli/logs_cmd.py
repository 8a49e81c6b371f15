"""`gleitzeit logs RUN [TASK] [--attempt N] [--follow] [--json]`: what a run's attempts
printed, line by line with timestamps, from the store -- also while it runs, from
another process (``--follow``, see log_follow.py)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Optional

import typer
from rich.text import Text

from gleitzeit_core._api.runs import pick_task
from gleitzeit_core.cli.app import EXIT_USAGE, BackendOpt, JsonOpt, fail, not_found, run_async, state
from gleitzeit_core.log_follow import LogFilter, follow, line_document, stored_lines, whole
from gleitzeit_core.store.log_lines import LogLine, LogStream

_STYLE = {LogStream.STDERR: "red", LogStream.NOTE: "dim", LogStream.LOG: "cyan"}


def register(app: typer.Typer) -> None:
    @app.command("logs")
    def logs(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run (from `workflow list`)."),
        task: Optional[str] = typer.Argument(None, metavar="[TASK]", help="Only this task (name, key or id)."),
        attempt: Optional[int] = typer.Option(None, "--attempt", min=1, help="Only this attempt number."),
        follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until the run ends."),
        backend: BackendOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Print what each attempt of a run (or of one task) printed: stdout, stderr and the
        provider's log records, one line each with its time. --json: one object per line.

        Example: gleitzeit logs run-1a2b3c4d5e6f "Process Data" --attempt 2 --follow
        """
        st = state(ctx, json=json_out, backend=backend)
        console = st.console

        def show(lines: list[LogLine], names: dict[str, str], one_task: bool) -> None:
            for line in lines:
                if st.json:
                    sys.stdout.write(json.dumps(line_document(line, names.get(line.task_id, line.task_id))) + "\n")
                    continue
                stamp = datetime.fromtimestamp(line.at).strftime("%H:%M:%S.%f")[:-3]
                where = "" if one_task else f"{names.get(line.task_id, line.task_id)}#{line.attempt} "
                kind = line.level if line.stream is LogStream.LOG else line.stream.value
                out = Text(f"{stamp} {where}{kind:<6} ", style="dim")
                out.append(line.text, style=_STYLE.get(line.stream, ""))
                console.print(out, soft_wrap=True)
            sys.stdout.flush()

        async def go() -> int:
            async with st.store() as store:
                run = await store.get_run(run_id)
                if run is None:
                    not_found(f"no run with id {run_id!r} in the {store.kind} store at {store.address}")
                tasks = await store.list_tasks(run_id=run_id)
                names = {t.id: t.name for t in tasks}
                only = LogFilter(attempt=attempt)
                if task is not None:
                    one = pick_task(tasks, task)
                    if one is None:
                        listed = ", ".join(repr(t.name) for t in tasks[:20])
                        fail(f"run {run_id} has no task {task!r}; its tasks: {listed}", EXIT_USAGE)
                    only = LogFilter(one.id, attempt)
                lines, after = await stored_lines(store, run_id, only)
                show(await whole(store, lines), names, task is not None)
                count = len(lines)
                if follow_:
                    async for batch in follow(store, run_id, only, after):
                        show(await whole(store, batch), names, task is not None)
                        count += len(batch)
                return count

        count = run_async(go)
        if not count and not st.json:
            console.print(Text("no lines" + (f" from attempt {attempt}" if attempt else ""), style="dim"))
