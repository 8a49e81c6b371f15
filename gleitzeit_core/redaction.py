"""Which names hold secrets, and masking them wherever values are shown or stored.

One rule for the whole code base (config listings, stored workflow outlines,
the dashboard): a key is secret when one of its words is a secret word
(``password``, ``token``, ``secret``, …) or it ends in ``api_key``-like pairs.
Words, not substrings: ``max_tokens`` is an LLM setting, not a secret.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
_SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "secret", "token", "credential", "credentials",
                           "apikey", "authorization", "cookie"})
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key"),
                           ("auth", "key")})


def is_secret_key(key: str) -> bool:
    """Whether a mapping key (or a dotted config key: its last part) names a secret."""
    words = [w for w in re.split(r"[^a-z0-9]+", key.rsplit(".", 1)[-1].lower()) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:]))


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with the values under secret keys masked, at any depth."""
    if isinstance(value, dict):
        return {k: (MASK if value[k] not in (None, "") and is_secret_key(str(k)) else redact(value[k]))
                for k in value}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
