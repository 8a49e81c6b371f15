"""A stdout/stderr collector with a hard cap: keeps the first N bytes, counts (and drops) the
rest, so a 1 GB flood costs the provider a counter, not memory."""

from __future__ import annotations

import codecs


class BoundedOutput:
    def __init__(self, name: str, cap: int):
        self.name = name
        self.cap = cap
        self.total = 0
        self._kept: list[str] = []
        self._closed = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def feed(self, data: bytes) -> str:
        """Account for `data`; return the newly kept text (empty once the cap is reached), with
        the truncation marker appended the moment the cap is crossed."""
        room = self.cap - self.total
        self.total += len(data)
        if room <= 0:
            return ""
        text = self._decoder.decode(data[:room], final=len(data) >= room)
        if len(data) > room:
            text += f"\n[{self.name} truncated at {self.cap} bytes]\n"
        self._kept.append(text)
        return text

    def text(self) -> str:
        if not self._closed and not self.truncated:
            self._kept.append(self._decoder.decode(b"", final=True))
        self._closed = True
        out = "".join(self._kept)
        if self.truncated:
            out += f"[{self.name}: {self.total} bytes written in total, first {self.cap} kept]\n"
        return out
