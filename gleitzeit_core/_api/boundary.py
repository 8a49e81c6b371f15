"""Where the API meets its caller: only the documented exception tree leaves it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from gleitzeit_core.errors import GleitzeitError, InternalError, primary

P = ParamSpec("P")
T = TypeVar("T")


@contextmanager
def boundary() -> Iterator[None]:
    """An exception group becomes its first Gleitzeit error, anything else an ``InternalError``
    (the original chained as ``__cause__``)."""
    try:
        yield
    except GleitzeitError:
        raise
    except Exception as exc:
        inner = primary(exc)
        if isinstance(inner, GleitzeitError):
            raise inner from inner.__cause__
        raise InternalError(f"{type(inner).__name__}: {inner}") from inner


def guarded(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """``fn`` (a public coroutine function) with its errors passed through ``boundary``."""
    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        with boundary():
            return await fn(*args, **kwargs)
    return call
