"""`gleitzeit trace export RUN`: send a stored run's trace to an OTLP/HTTP endpoint."""

from __future__ import annotations

import typer

from gleitzeit_core._api.traces import export_trace
from gleitzeit_core.cli.app import BackendOpt, JsonOpt, run_async, state
from gleitzeit_core.cli.render import emit

app = typer.Typer(help="OpenTelemetry traces of runs.", no_args_is_help=True)


@app.command("export")
def export(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run whose trace to send."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rebuild a run's trace from the store and send it (OTEL_EXPORTER_OTLP_* variables say where).

    Example: gleitzeit trace export run-1a2b3c4d5e6f   (with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318)
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> int:
        async with st.store() as store:
            return await export_trace(store, run_id)

    spans = run_async(go)
    from gleitzeit_core.tracing.export import endpoint

    emit(st.json, {"run_id": run_id, "spans": spans, "endpoint": endpoint()},
         lambda: st.console.print(f"sent {spans} spans of run {run_id} to {endpoint()}"))
