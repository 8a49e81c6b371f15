"""`gleitzeit exec CODE`: Python code through the sandboxed provider, without a workflow file.

Nothing is persisted: a scratch computation does not belong in the run history.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import typer

from gleitzeit_core.cli.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, JsonOpt, fail, state
from gleitzeit_core.cli.render import print_json
from gleitzeit_core.cli.common import execute, one_task
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import TaskStatus


def register(app: typer.Typer) -> None:
    @app.command("exec")
    def exec_(
        ctx: typer.Context,
        code: Optional[str] = typer.Argument(None, metavar="CODE", help="Python code, or - to read it from stdin."),
        file: Optional[str] = typer.Option(None, "--file", "-f", help="Run this script file instead."),
        timeout: Optional[float] = typer.Option(None, "--timeout", min=0.001, help="Seconds before the code is stopped."),
        read: Optional[list[str]] = typer.Option(None, "--read", metavar="DIR",
                                                 help="A host folder the code may read (repeatable); none by default."),
        json_out: JsonOpt = False,
    ) -> None:
        """Run Python code in the sandbox; print its stdout, then its `result` (exit 1 if it raises).

        Example: gleitzeit exec "import math; result = math.sqrt(16)"

        Example: echo "print('hi')" | gleitzeit exec -
        """
        st = state(ctx, json=json_out)
        if (code is None) == (file is None):
            fail("give the code (or - for stdin) or --file FILE, one of them", EXIT_USAGE)
        # No workflow folder: the code sees no host folder but the script itself and --read ones.
        params: dict[str, Any] = ({"file": os.path.abspath(file)} if file
                                  else {"code": sys.stdin.read() if code == "-" else code})
        if read:
            params["sandbox"] = {"read": [os.path.abspath(d) for d in read]}
            st.allow_read = tuple(params["sandbox"]["read"])  # named here by the runner, so allowed
        outcome = execute(st, one_task("python/execute", params, name="exec", folder=False,
                                    task={"timeout": timeout} if timeout else None), quiet=True,
                          store=InMemoryBackend())
        task = outcome.tasks[0]
        res = task.result if isinstance(task.result, dict) else {}
        if st.json:
            print_json({"status": task.status.value, "stdout": res.get("stdout", ""), "stderr": res.get("stderr", ""),
                        "result": res.get("result"), "error": task.error})
        else:
            sys.stdout.write(res.get("stdout", ""))
            sys.stderr.write(res.get("stderr", ""))
            if res.get("result") is not None:
                value = res["result"]
                print(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2))
            if task.error:
                print(f"error: {task.error}", file=sys.stderr)
        raise typer.Exit(EXIT_OK if task.status is TaskStatus.COMPLETED else EXIT_FAILED)
