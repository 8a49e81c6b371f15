"""What one attempt printed, kept bounded for the store.

Each stream keeps its first and its last ``limit / 2`` characters; what lies
between is replaced by one marker line saying how much was left out, so a
runaway loop cannot fill the store and the start (the setup) and the end (the
error) of the output both survive.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: characters kept per stream per attempt (half from the start, half from the end)
MAX_OUTPUT_CHARS = 64 * 1024
STREAMS = ("stdout", "stderr")


def truncation_marker(dropped: int) -> str:
    return f"\n[… {dropped:,} characters of output left out …]\n"


@dataclass
class Bounded:
    """Head and tail of one stream, fed in pieces."""

    limit: int = MAX_OUTPUT_CHARS
    head: str = ""
    tail: deque[str] = field(default_factory=deque)
    tail_len: int = 0
    dropped: int = 0

    def add(self, data: str) -> None:
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail.append(data)
        self.tail_len += len(data)
        keep = self.limit - self.limit // 2
        while self.tail_len > keep:
            excess = self.tail_len - keep
            first = self.tail[0]
            if len(first) <= excess:
                self.tail.popleft()
                self.tail_len -= len(first)
                self.dropped += len(first)
            else:
                self.tail[0] = first[excess:]
                self.tail_len -= excess
                self.dropped += excess

    def text(self) -> str | None:
        if not self.head and not self.tail:
            return None
        tail = "".join(self.tail)
        return self.head + (truncation_marker(self.dropped) if self.dropped else "") + tail


def bounded(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    b = Bounded(limit)
    b.add(text)
    return b.text() or ""


class AttemptOutput:
    """Collects an attempt's streamed stdout/stderr; ``final`` prefers what the
    provider returned in its result or error details (its complete capture)."""

    def __init__(self, limit: int = MAX_OUTPUT_CHARS):
        self.streams = {name: Bounded(limit) for name in STREAMS}
        self.limit = limit

    def add(self, stream: str, data: str) -> None:
        if stream in self.streams:  # "delta" (LLM tokens) is the result, not output
            self.streams[stream].add(data)

    def final(self, returned: Any) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name in STREAMS:
            given = returned.get(name) if isinstance(returned, dict) else None
            out[name] = bounded(given, self.limit) if isinstance(given, str) and given else self.streams[name].text()
        return out
