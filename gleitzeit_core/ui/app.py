"""The dashboard's ASGI application (Starlette): HTML pages and the JSON API they use.

Pages are rendered on the server (Jinja2, autoescaped: task names, results and
errors come from untrusted workflows and code). The graph and the timeline are
SVG laid out here; the browser gets ~100 lines of own JS plus vendored htmx.
Read-only unless ``allow_actions``; every POST also needs the per-process
token the pages carry and a same-origin ``Origin``, so another web page open
in the same browser cannot cancel runs.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from urllib.parse import quote

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from gleitzeit_core.presentation.records import local_time, result_preview
from gleitzeit_core.config import Config
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.ui.actions import Resumer
from gleitzeit_core.ui.graph_layout import layout
from gleitzeit_core.ui.live import run_events
from gleitzeit_core.log_follow import line_document
from gleitzeit_core.ui.log_events import task_lines, task_log_events
from gleitzeit_core.ui.queries import RunDetail, duration_s, run_detail, run_document, run_summary, task_detail
from gleitzeit_core.ui.timeline import timeline

HERE = Path(__file__).parent
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
RUNS_LIMIT_MAX = 1000
#: result and parameter JSON longer than this is cut in the task panel (the API returns it whole)
PANEL_JSON_CHARS = 20000


@dataclass
class UiSettings:
    allow_actions: bool = False
    loopback: bool = True
    global_args: list[str] = field(default_factory=list)  # forwarded to `workflow resume`
    event_interval: float = 0.5
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _pretty(value: Any, limit: int) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters; the API has all)"


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.autoescape = True
    env.filters["when"] = local_time
    env.filters["clock"] = lambda at: datetime.fromtimestamp(at).strftime("%H:%M:%S")
    env.filters["took"] = _duration
    env.filters["q"] = lambda s: quote(str(s), safe="")
    env.filters["preview"] = result_preview
    env.filters["pretty"] = _pretty
    env.globals["duration_s"] = duration_s
    return templates


class Dashboard:
    """Request handlers over one opened store."""

    def __init__(self, make_store: Callable[[], Store], config: Config, settings: UiSettings):
        self.make_store = make_store
        self.config = config
        self.settings = settings
        self.templates = _templates()
        self._store: Store | None = None
        self._resumer: Resumer | None = None

    @property
    def store(self) -> Store:
        assert self._store is not None, "the store opens in the app's lifespan"
        return self._store

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with self.make_store() as store, anyio.create_task_group() as tg:
            self._store = store
            self._resumer = Resumer(tg, self.settings.global_args)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                self._store = None

    # -- helpers ----------------------------------------------------------------
    def page(self, request: Request, name: str, **context: Any) -> Response:
        context.setdefault("settings", self.settings)
        return self.templates.TemplateResponse(request, name, context)

    async def _detail(self, request: Request, *, attempts: bool = True) -> RunDetail:
        detail = await run_detail(self.store, request.path_params["run_id"], attempts=attempts)
        if detail is None:
            raise HTTPException(404, f"no run {request.path_params['run_id']!r}")
        return detail

    @staticmethod
    def _task_of(detail: RunDetail, key: str):
        task = detail.task(key)
        if task is None:
            raise HTTPException(404, f"no task {key!r} in run {detail.run.run_id}")
        return task

    async def _runs(self, request: Request) -> tuple[list, dict[str, Any]]:
        q = request.query_params
        status = q.get("status") or None
        if status is not None and status not in {s.value for s in RunStatus}:
            raise HTTPException(400, f"unknown status {status!r}")
        try:
            limit = max(1, min(RUNS_LIMIT_MAX, int(q.get("limit") or 50)))
        except ValueError:
            raise HTTPException(400, "limit must be a number") from None
        workflow = (q.get("workflow") or "").strip() or None
        runs = await self.store.list_runs(status=RunStatus(status) if status else None, workflow_name=workflow,
                                          limit=limit)
        return runs, {"status": status or "", "workflow": workflow or "", "limit": limit}

    # -- pages ------------------------------------------------------------------
    async def runs_page(self, request: Request) -> Response:
        runs, filters = await self._runs(request)
        return self.page(request, "runs.html", runs=runs, filters=filters, statuses=[s.value for s in RunStatus])

    async def runs_fragment(self, request: Request) -> Response:
        runs, filters = await self._runs(request)
        return self.page(request, "_runs_table.html", runs=runs, filters=filters)

    async def run_page(self, request: Request) -> Response:
        detail = await self._detail(request)
        graph = layout([(t.key, t.name) for t in detail.top], detail.dependencies())
        return self.page(request, "run.html", d=detail, graph=graph, statuses=[s.value for s in TaskStatus],
                         states={t.key: t for t in detail.top}, item_counts=detail.item_counts(),
                         timeline=timeline(detail.tasks, detail.attempts), has_outline=bool(detail.outline))

    async def timeline_fragment(self, request: Request) -> Response:
        detail = await self._detail(request)
        return self.page(request, "_timeline.html", d=detail, timeline=timeline(detail.tasks, detail.attempts))

    async def task_panel(self, request: Request) -> Response:
        detail = await self._detail(request)
        task = self._task_of(detail, request.path_params["key"])
        info = task_detail(detail, task)
        lines, after = await task_lines(self.store, task)
        return self.page(request, "_task_panel.html", d=detail, t=task, info=info, limit=PANEL_JSON_CHARS,
                         lines=lines, after=after or "")

    async def providers_page(self, request: Request) -> Response:
        return self.page(request, "providers.html")

    async def providers_fragment(self, request: Request) -> Response:
        return self.page(request, "_providers_table.html", probes=await self._probes(), workers=await self._workers())

    async def _workers(self) -> list[dict[str, Any]] | None:
        """A Redis pool's live workers (None when the store is not Redis: there is no pool)."""
        if self.store.kind != "redis":
            return None
        from gleitzeit_core.dispatch.queue import live_workers
        from gleitzeit_core.redis_keys import connect

        r = connect(self.config.redis_url)
        try:
            return [w.to_json() for w in await live_workers(r)]
        finally:
            await r.aclose()

    async def api_workers(self, request: Request) -> Response:
        return JSONResponse(await self._workers() or [])

    async def _probes(self) -> list:
        from gleitzeit_core.dispatch.probe import probe_all
        from gleitzeit_core.providers.host import discover_manifests

        manifests, _ = discover_manifests(self.config["providers.directory"], ())
        return await probe_all(self.config, manifests, health=True)

    # -- JSON API ---------------------------------------------------------------
    async def api_runs(self, request: Request) -> Response:
        runs, _ = await self._runs(request)
        return JSONResponse([run_summary(r) for r in runs])

    async def api_run(self, request: Request) -> Response:
        return JSONResponse(run_document(await self._detail(request)))

    async def api_tasks(self, request: Request) -> Response:
        detail = await self._detail(request)
        return JSONResponse([task_detail(detail, t) for t in detail.top])

    async def api_task(self, request: Request) -> Response:
        detail = await self._detail(request)
        return JSONResponse(task_detail(detail, self._task_of(detail, request.path_params["key"])))

    async def api_events(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if await self.store.get_run(run_id) is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return StreamingResponse(run_events(self.store, run_id, interval=self.settings.event_interval),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def _logged_task(self, request: Request):
        """The task named by ``?task=KEY`` (its key in the workflow) of the path's run."""
        run_id, key = request.path_params["run_id"], request.query_params.get("task")
        if not key:
            raise HTTPException(400, "say which task: ?task=KEY")
        task = next((t for t in await self.store.list_tasks(run_id=run_id) if t.key == key), None)
        if task is None:
            raise HTTPException(404, f"no task {key!r} in run {run_id!r}")
        return task

    async def api_logs(self, request: Request) -> Response:
        attempt = request.query_params.get("attempt")
        if attempt is not None and not attempt.isdigit():
            raise HTTPException(400, "attempt must be a number")
        task = await self._logged_task(request)
        lines, _ = await task_lines(self.store, task, int(attempt) if attempt else None)
        return JSONResponse([line_document(line, task.name) for line in lines])

    async def api_log_events(self, request: Request) -> Response:
        task = await self._logged_task(request)
        after = request.query_params.get("after") or None
        return StreamingResponse(task_log_events(self.store, task, after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def api_providers(self, request: Request) -> Response:
        return JSONResponse([p.to_json() for p in await self._probes()])

    async def metrics(self, request: Request) -> Response:
        from gleitzeit_core import metrics

        return Response(await metrics.render(self.store), media_type=metrics.CONTENT_TYPE)

    async def api_cancel(self, request: Request) -> Response:
        self._check_action(request)
        detail = await self._detail(request, attempts=False)
        if detail.run.status.finished:
            return JSONResponse({"run_id": detail.run.run_id, "status": detail.run.status.value,
                                 "cancel_requested": False})
        await self.store.request_cancel(detail.run.run_id)
        return JSONResponse({"run_id": detail.run.run_id, "status": detail.run.status.value, "cancel_requested": True})

    async def api_resume(self, request: Request) -> Response:
        self._check_action(request)
        detail = await self._detail(request, attempts=False)
        if detail.run.status is RunStatus.COMPLETED:
            raise HTTPException(409, f"run {detail.run.run_id} already completed; nothing to resume")
        assert self._resumer is not None
        started = self._resumer.start(detail.run.run_id)
        return JSONResponse({"run_id": detail.run.run_id, "resume_started": started}, status_code=202)

    def _check_action(self, request: Request) -> None:
        if not self.settings.allow_actions:
            raise HTTPException(403, "this dashboard is read-only: start it with `gleitzeit ui --allow-actions`")
        if not secrets.compare_digest(request.headers.get("x-gleitzeit-token", ""), self.settings.token):
            raise HTTPException(403, "missing or wrong X-Gleitzeit-Token (reload the page)")
        origin = request.headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
            raise HTTPException(403, "cross-origin request refused")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return self.page(request, "error.html", status=exc.status_code, message=exc.detail)


def create_app(make_store: Callable[[], Store], config: Config, settings: UiSettings) -> Starlette:
    ui = Dashboard(make_store, config, settings)
    run = "/runs/{run_id}"
    api = "/api/runs/{run_id}"
    routes = [
        Route("/", ui.runs_page),
        Route("/fragments/runs", ui.runs_fragment),
        Route(run, ui.run_page),
        Route(run + "/timeline", ui.timeline_fragment),
        Route(run + "/tasks/{key:path}", ui.task_panel),
        Route("/providers", ui.providers_page),
        Route("/fragments/providers", ui.providers_fragment),
        Route("/api/runs", ui.api_runs),
        Route(api, ui.api_run),
        Route(api + "/tasks", ui.api_tasks),
        Route(api + "/tasks/{key:path}", ui.api_task),
        Route(api + "/events", ui.api_events),
        Route(api + "/logs", ui.api_logs),
        Route(api + "/logs/events", ui.api_log_events),
        Route(api + "/cancel", ui.api_cancel, methods=["POST"]),
        Route(api + "/resume", ui.api_resume, methods=["POST"]),
        Route("/api/providers", ui.api_providers),
        Route("/api/workers", ui.api_workers),
        Route("/metrics", ui.metrics),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    # a loopback dashboard answers only to loopback names: a web page cannot reach it
    # through a DNS name rebound to 127.0.0.1
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_NAMES)] if settings.loopback else []
    return Starlette(routes=routes, middleware=middleware, lifespan=ui.lifespan,
                     exception_handlers={HTTPException: ui.http_error})
