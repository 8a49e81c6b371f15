"""The stream names an ``on_output(stream, data)`` handler receives, shared by the
provider host that produces them and the scheduler that stores them.

``stdout`` / ``stderr``: what the task printed; ``delta``: an LLM's tokens (part of
the result, not output); ``log:<level>``: a provider's `$/log` record for the
attempt, one message per line.
"""

from __future__ import annotations

LOG_PREFIX = "log:"


def log_stream(level: str) -> str:
    return LOG_PREFIX + level
