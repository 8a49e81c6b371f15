"""Resource limits for the sandboxed process tree (inherited by every descendant)."""

from __future__ import annotations

import math
import resource
import signal
from typing import Mapping

MiB = 1 << 20


def apply(req: Mapping, *, with_nproc: bool) -> None:
    """Address space, CPU (tied to the timeout so a busy loop also dies without the host),
    open files, file size, core dumps, and the process count. RLIMIT_NPROC is only enforced for a
    non-root real uid, so callers apply it after dropping privileges."""
    cpu = max(1, math.ceil(float(req["timeout"]))) + 1
    limits = {
        resource.RLIMIT_AS: int(req["memory_mb"]) * MiB,
        resource.RLIMIT_CPU: (cpu, cpu + 1),  # SIGXCPU at soft, SIGKILL at hard
        resource.RLIMIT_NOFILE: int(req["max_open_files"]),
        resource.RLIMIT_FSIZE: int(req["max_file_bytes"]),
        resource.RLIMIT_CORE: 0,
    }
    if with_nproc:
        limits[resource.RLIMIT_NPROC] = int(req["max_processes"])
    for which, value in limits.items():
        soft, hard = value if isinstance(value, tuple) else (value, value)
        _, cur_hard = resource.getrlimit(which)
        if cur_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, cur_hard), min(hard, cur_hard)
        resource.setrlimit(which, (soft, hard))
    # A too-large write should fail with OSError(EFBIG) in the user's code, not kill it silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
