"""``${secrets.NAME}``: values filled in at dispatch, masked in everything that comes back.

The workflow, the scheduler and the store only ever hold secret *names*: the
scheduler's substitution writes ``***`` where a secret goes. Just before the
provider call, ``SecretsDispatcher`` writes the values into the places the
workflow file put them (a ``Site``: a parameter's path and its text, which the
loader allows to hold secret references only; or a ``sandbox.env`` value), and
masks every secret value (and its encodings, ``redaction.Masker``) in the
output, result and error on their way back, before anything stores or prints
them. Sites come from the workflow, never from data, so a task result that
happens to contain ``${secrets.X}`` stays text.

On a worker pool the orchestrator fills nothing: the sites travel in the
attempt's ``_meta`` (names only) and the worker fills them from its own
``--env-file`` or environment (``request_filled``). Which environment names may be
read is the runner's (or the worker's) allow-list, never the file's
(``secret_sources``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gleitzeit_core.dispatch.base import Dispatcher
from gleitzeit_core.dispatch.wrapper import DelegatingDispatcher
from gleitzeit_core.errors import Problem, ProviderError, WorkflowInvalid
from gleitzeit_core.redaction import MIN_SECRET_CHARS, Masker, MaskedStream
from gleitzeit_core.secret_sources import NONE_ALLOWED, AllowList, Unavailable, how_to_allow, lookup
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.refs import SECRETS, Reference, scan_string, substitute
from gleitzeit_sdk.codes import FailureKind

#: ``_meta`` key carrying an attempt's sites to a worker (removed before the provider sees ``_meta``).
SITES_META = "gleitzeitSecretSites"
Path = tuple[Any, ...]
Request = Callable[..., Awaitable[Any]]  # (params, *, on_output) -> result


@dataclass(frozen=True)
class Site:
    """Where a secret goes: the path in the parameters and the text written there in the file."""

    path: Path
    template: str

    @property
    def names(self) -> list[str]:
        return [str(r.path[0]) for r in scan_string(self.template, {})
                if isinstance(r, Reference) and r.task == SECRETS]

    def to_json(self) -> list[Any]:
        return [list(self.path), self.template]

    @classmethod
    def from_json(cls, raw: Any) -> Site:
        path, template = raw
        return cls(tuple(path), str(template))


def sites_of(task: TaskSpec, params: Mapping[str, Any]) -> list[Site]:
    """The task's secret sites: its parameters as written, and the sandbox block the
    scheduler attached (policy from the workflow's checked ``sandbox:``, never data)."""
    sites = [Site(path, text) for path, text in _secret_strings(task.params, ())]
    env = (params.get("sandbox") or {}).get("env") if isinstance(params.get("sandbox"), dict) else None
    if isinstance(env, dict):
        sites += [Site(("sandbox", "env", k), v) for k, v in env.items() if isinstance(v, str) and "${secrets" in v]
    return sites


def _secret_strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        if "${secrets" in value:
            yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _secret_strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _secret_strings(v, (*path, i))


def values_for(workflow: Workflow, given: Mapping[str, str] | None = None, allow: AllowList = NONE_ALLOWED,
               environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The workflow's secrets: ``given`` (``--env-file``, the API's ``secrets=``), else the environment
    for names the runner ``allow``s (``secret_sources``); raises ``WorkflowInvalid`` (exit 2, before
    the run) for one that is not allowed, missing or too short."""
    values: dict[str, str] = {}
    problems = []
    for spec in workflow.secrets:
        value = lookup(spec.name, given or {}, allow, environ)
        where = str(spec.pos or workflow.source_path or workflow.name)
        if value is Unavailable.NOT_ALLOWED:
            problems.append(Problem(where, f"secret {spec.name!r} is not given, and {how_to_allow(spec.name)}"))
        elif value is Unavailable.NOT_SET:
            problems.append(Problem(where, f"secret {spec.name!r} is not set: export {spec.name}=… or put it in a "
                                           f"file given with --env-file"))
        elif (short := too_short(spec.name, value)) is not None:
            problems.append(Problem(where, short))
        else:
            values[spec.name] = value
    if problems:
        raise WorkflowInvalid(problems)
    return values


def too_short(name: str, value: str) -> str | None:
    """Why ``value`` cannot be secret ``name``'s value, or None: masking a value under
    ``MIN_SECRET_CHARS`` would mask ordinary output (the engine's and a worker's one check)."""
    if len(value) >= MIN_SECRET_CHARS:
        return None
    return (f"secret {name!r} is {len(value)} characters: at least {MIN_SECRET_CHARS} are needed, since masking "
            f"a value that short would mask ordinary output")


def read_env_file(path: str) -> dict[str, str]:
    """``NAME=value`` lines (dotenv syntax, python-dotenv); raises WorkflowInvalid when unreadable."""
    from dotenv import dotenv_values

    if not os.path.isfile(path):
        raise WorkflowInvalid([Problem(path, "--env-file: no such file")])
    try:
        return {k: v for k, v in dotenv_values(path).items() if v is not None}
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowInvalid([Problem(path, f"--env-file: cannot read it: {exc}")]) from None


def fill(params: dict[str, Any], sites: list[Site], values: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``params`` with each site's text written with the secret values
    (containers on a site's path are copied, the rest is shared)."""
    out = dict(params)
    for site in sites:
        text = substitute(site.template, results={SECRETS: values}, task_names={})
        container: Any = out
        for step in site.path[:-1]:
            child = container[step]
            child = dict(child) if isinstance(child, dict) else list(child)
            container[step] = child
            container = child
        container[site.path[-1]] = text
    return out


async def request_filled(request: Request, params: dict[str, Any], sites: list[Site],
                         values: Mapping[str, str], on_output: Callable[[str, str], None]) -> Any:
    """``request`` with the secrets filled in; output, result and error come back masked."""
    masker = Masker(values.values())
    streams: dict[str, MaskedStream] = {}

    def masked_output(stream: str, data: str) -> None:
        if stream not in streams:
            streams[stream] = MaskedStream(masker, lambda text, s=stream: on_output(s, text))
        streams[stream].write(data)

    try:
        with masked_logs(masker):  # --debug logs the wire traffic, filled values included
            result = await request(fill(params, sites, values) if sites else params,
                                   on_output=masked_output if masker else on_output)
    except ProviderError as exc:
        if not masker:
            raise
        raise ProviderError(masker.text(exc.message), kind=exc.kind, retryable=exc.retryable, code=exc.code,
                            details=masker.value(exc.details)) from None
    finally:
        for stream in streams.values():
            stream.flush()
    return masker.value(result)


class _MaskingFilter(logging.Filter):
    def __init__(self, masker: Masker):
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.masker.text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


@contextmanager
def masked_logs(masker: Masker) -> Iterator[None]:
    """While a filled request is in flight, log lines (on every handler of the root logger)
    have its secret values masked."""
    if not masker:
        yield
        return
    handlers = list(logging.getLogger().handlers)
    mask = _MaskingFilter(masker)
    for handler in handlers:
        handler.addFilter(mask)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(mask)


def worker_values(sites: list[Site], given: Mapping[str, str], allow: AllowList, environ: Mapping[str, str],
                  worker: str) -> dict[str, str]:
    """A worker's values for the names the attempt's sites use: its ``--env-file`` (``given``), else
    its environment for the names it allows; raises a non-retryable ProviderError for one that is not
    allowed, missing or too short (``too_short``, as the engine's ``values_for``)."""
    values = {}
    for name in sorted({n for site in sites for n in site.names}):
        value = lookup(name, given, allow, environ)
        if value is Unavailable.NOT_ALLOWED:
            raise ProviderError(f"secret {name!r} is not given to worker {worker!r}, and "
                                f"{how_to_allow(name, 'start the worker')}",
                                kind=FailureKind.SECRET_MISSING, retryable=False)
        if value is Unavailable.NOT_SET:
            raise ProviderError(f"secret {name!r} is not set in the environment of worker {worker!r}: start the "
                                f"worker with {name} set (or --env-file)", kind=FailureKind.SECRET_MISSING, retryable=False)
        if (short := too_short(name, value)) is not None:
            raise ProviderError(f"{short} (on worker {worker!r})", kind=FailureKind.SECRET_MISSING, retryable=False)
        values[name] = value
    return values


def sites_from_meta(meta: dict[str, Any]) -> tuple[dict[str, Any], list[Site]]:
    """The attempt's ``_meta`` without the sites, and the sites (a worker's side)."""
    raw = meta.get(SITES_META)
    if raw is None:
        return meta, []
    return {k: v for k, v in meta.items() if k != SITES_META}, [Site.from_json(s) for s in raw]


class SecretsDispatcher(DelegatingDispatcher):
    """A Dispatcher that puts the run's secrets in at the last moment (``values``) or, for a
    worker pool (``values`` None), sends the sites along for the worker to fill."""

    def __init__(self, inner: Dispatcher, values: Mapping[str, str] | None):
        super().__init__(inner)
        self.values = values

    async def execute(self, task: TaskSpec, params: dict[str, Any], *, meta: dict[str, Any],
                      timeout: float | None, on_output: Callable[[str, str], None]) -> Any:
        if self.values is not None and not self.values:  # a workflow without secrets
            return await self.inner.execute(task, params, meta=meta, timeout=timeout, on_output=on_output)
        sites = sites_of(task, params)
        if self.values is None:
            if sites:
                meta = {**meta, SITES_META: [s.to_json() for s in sites]}
            return await self.inner.execute(task, params, meta=meta, timeout=timeout, on_output=on_output)

        async def request(filled: dict[str, Any], *, on_output: Callable[[str, str], None]) -> Any:
            return await self.inner.execute(task, filled, meta=meta, timeout=timeout, on_output=on_output)
        return await request_filled(request, params, sites, self.values, on_output)
