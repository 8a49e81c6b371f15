"""Durations as people write them: ``90s``, ``30m``, ``12h``, ``7d``, ``2w``, ``1d12h``."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float | None:
    """Seconds, or None when ``text`` is not a number-and-unit duration."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)
