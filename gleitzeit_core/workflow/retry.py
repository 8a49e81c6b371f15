"""Retry policy: pure data plus the delay formula. No timers here.

Delay after failed attempt ``n`` (1-based):

* fixed:        base
* linear:       base * n
* exponential:  base * 2 ** (n - 1)

capped at ``max_delay``. With ``jitter`` the capped delay is multiplied by a
uniform factor in [0.5, 1.0] ("equal jitter"): retries of many tasks that failed
together spread out, and the delay never exceeds the cap or drops below half
of the computed value.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum


class Strategy(str, Enum):
    FIXED = "fixed"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


JITTER_RANGE = (0.5, 1.0)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts every execution, the first included (1 = no retry).

    ``on_crash``: also re-run an attempt of a non-idempotent method that was lost
    because its provider crashed (its side effects may have happened already).
    Idempotent methods are re-run after a crash regardless (PROTOCOL.md §2.5).
    """

    max_attempts: int = 1
    base_delay: float = 1.0
    max_delay: float = 60.0
    strategy: Strategy = Strategy.EXPONENTIAL
    jitter: bool = False
    on_crash: bool = False

    def should_retry(self, attempt: int) -> bool:
        """Whether another attempt follows failed attempt number ``attempt``."""
        return attempt < self.max_attempts

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        if self.strategy is Strategy.FIXED:
            raw = self.base_delay
        elif self.strategy is Strategy.LINEAR:
            raw = self.base_delay * attempt
        else:
            # Cap the exponent so huge attempt counts cannot overflow the float.
            raw = self.base_delay * 2.0 ** min(attempt - 1, 1023)
        capped = min(raw, self.max_delay)
        if self.jitter:
            capped *= (rng or random).uniform(*JITTER_RANGE)
        return capped
