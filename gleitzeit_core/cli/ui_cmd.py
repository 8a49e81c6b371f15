"""`gleitzeit ui`: the local web dashboard over the configured store."""

from __future__ import annotations

import sys

import anyio
import typer

from gleitzeit_core.cli.app import BackendOpt, run_async, state


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless told otherwise)."),
        port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port; the URL is printed)."),
        backend: BackendOpt = None,
        allow_actions: bool = typer.Option(False, "--allow-actions",
                                           help="Offer cancel and resume buttons (read-only without)."),
    ) -> None:
        """Serve a dashboard of runs: graph, timeline, tasks, logs, providers; JSON API under /api/.

        Example: gleitzeit ui --port 8765   (then open http://127.0.0.1:8765/)
        """
        st = state(ctx, backend=backend)
        from gleitzeit_core.ui.app import UiSettings, create_app
        from gleitzeit_core.ui.server import bind, is_loopback, serve, url_of

        async def check_store() -> None:  # a store that is not there is one line now, not a traceback later
            async with st.store():
                pass

        run_async(check_store)
        sock = bind(host, port)  # CannotServe: one line, exit 1
        global_args = [*(["--config", st.config_path] if st.config_path else []),
                       "--backend", str(st.config()["persistence.backend"])]
        settings = UiSettings(allow_actions=allow_actions, loopback=is_loopback(sock), global_args=global_args)
        if not settings.loopback:
            print(f"warning: listening on {host}: anyone who can reach this machine can read every run"
                  + (" and cancel or resume it" if allow_actions else ""), file=sys.stderr)
        print(f"Gleitzeit dashboard on {url_of(sock)} ({st.store().kind} store"
              + (", actions enabled" if allow_actions else ", read-only") + "); Ctrl-C stops it", flush=True)
        try:  # Ctrl-C ends as KeyboardInterrupt: `main` reports it, exit 130
            anyio.run(serve, create_app(st.store, st.config(), settings), sock, backend="asyncio")
        finally:
            sock.close()

