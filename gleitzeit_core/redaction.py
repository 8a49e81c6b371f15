"""Which names hold secrets, and masking them wherever values are shown or stored.

One rule for the whole code base (config listings, stored workflow outlines,
the dashboard): a key is secret when one of its words is a secret word
(``password``, ``token``, ``secret``, …) or it ends in ``api_key``-like pairs.
Words, not substrings: ``max_tokens`` is an LLM setting, not a secret.

``Masker`` masks known values instead: the ``secrets:`` of a run, wherever a
task's output, result or error enters the store, a log or the screen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
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


# -- masking known values (secrets filled in at dispatch) -------------------------------------

#: Shorter secret values are refused: masking them would mask ordinary text.
MIN_SECRET_CHARS = 8
#: From this length the base64 of a secret is also found inside a longer base64 text
#: (at each of the three byte alignments); shorter cores would match by chance.
_B64_CORE_MIN_CHARS = 12


def _encodings(value: str) -> set[str]:
    """The forms a task is likely to print a secret in: as is, JSON-escaped, URL-encoded, base64."""
    import base64
    from urllib.parse import quote, quote_plus

    raw = value.encode("utf-8")
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value), quote_plus(value)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms |= {whole, whole.rstrip("=")}
        if len(value) >= _B64_CORE_MIN_CHARS:
            for shift, head in ((0, 0), (1, 2), (2, 3)):  # characters that mix in the bytes before
                text = encode(b"\0" * shift + raw).decode("ascii").rstrip("=")
                partial = (len(raw) + shift) % 3
                tail = partial + 1 if partial else 0  # characters that mix in the bytes after
                forms.add(text[head:len(text) - tail])
    return {f for f in forms if f}


class Masker:
    """Replaces every known secret value, in any of its ``_encodings``, by ``***``.

    One regular expression of all forms, longest first, so a longer form is never
    left half-masked by a shorter one.
    """

    def __init__(self, values: Iterable[str]):
        forms = sorted({f for v in values if v for f in _encodings(v)}, key=len, reverse=True)
        self.forms = forms
        self._pattern = re.compile("|".join(map(re.escape, forms))) if forms else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value with secrets masked in every string, keys included."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    def held_back(self, text: str) -> int:
        """How many trailing characters of ``text`` could begin a form (wait for more output)."""
        hold = 0
        for form in self.forms:
            for n in range(min(len(form) - 1, len(text)), hold, -1):
                if text.endswith(form[:n]):
                    hold = n
                    break
        return hold


class MaskedStream:
    """Output that arrives in pieces, masked even when a secret is split between two pieces:
    the end of each piece that could start a secret waits for the next piece (or ``flush``)."""

    def __init__(self, masker: Masker, emit: Callable[[str], None]):
        self.masker, self.emit, self.pending = masker, emit, ""

    def write(self, data: str) -> None:
        text = self.masker.text(self.pending + data)
        hold = self.masker.held_back(text)
        self.pending = text[len(text) - hold:] if hold else ""
        if len(text) > hold:
            self.emit(text[:len(text) - hold])

    def flush(self) -> None:
        if self.pending:
            text, self.pending = self.pending, ""
            self.emit(self.masker.text(text))
