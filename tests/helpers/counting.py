"""Operation counts for the ×10 scaling tests: work measured as calls made or memory
allocated, never as time, so a loaded machine cannot make a test pass or fail."""

from __future__ import annotations

import sys
import tracemalloc
from typing import Any, Callable


def work(fn: Callable[[], Any]) -> int:
    """Python work done while ``fn`` runs (this thread): function calls and lines executed,
    a loop's every iteration included (a comprehension's too). Work inside one C call
    (``x in a_list``, slicing) is not seen: keep such a call out of a loop by design."""
    count = 0

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return local

    def hook(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return local

    sys.settrace(hook)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def peak_bytes(fn: Callable[[], Any]) -> int:
    """The most memory Python held at once while ``fn`` ran, above what it held before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


#: ×10 the input may cost at most this many times the work: linear with slack for fixed
#: costs that do not scale (a quadratic path costs ~100×, an n·log n one ~13×).
LINEAR = 12.0
#: The same for memory held at once: dicts and lists grow by doubling their capacity, so ×10
#: entries can land one doubling further (up to 20×); a quadratic path is still ~100×.
LINEAR_MEMORY = 20.0
