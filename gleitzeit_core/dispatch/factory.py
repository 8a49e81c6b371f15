"""``make_dispatcher``: the one place the configuration picks where attempts go
(`gleitzeit run` / resume, ``ExecutionEngine``, `gleitzeit worker`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from gleitzeit_core.config import Config
from gleitzeit_core.workflow.model import Workflow

if TYPE_CHECKING:
    from gleitzeit_core.dispatch.local import LocalDispatcher
    from gleitzeit_core.dispatch.redis import RedisDispatcher


def make_dispatcher(config: Config, *, distributed: bool = False, workflow: Workflow | None = None,
                    extra: Sequence[str] = (), only: Sequence[str] | None = None,
                    ) -> LocalDispatcher | RedisDispatcher:
    """Provider processes here, or with ``distributed`` the worker pool of the Redis
    backend. ``workflow`` adds the providers it brings; ``extra`` (manifest files) and
    ``only`` (provider names) choose a worker's providers. Each adapter's stack loads
    only when it is chosen."""
    if distributed:  # the pool coordinates through the redis_url's server (callers check the backend)
        from gleitzeit_core.dispatch.redis import RedisDispatcher

        return RedisDispatcher(config.redis_url)
    from gleitzeit_core.dispatch.local import LocalDispatcher, make_host

    return LocalDispatcher(make_host(config, workflow, extra=extra, only=only))
