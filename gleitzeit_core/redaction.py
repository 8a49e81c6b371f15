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
        # last character of a proper prefix -> the prefix lengths ending in it, longest first
        self._prefix_ends: dict[str, list[tuple[int, str]]] = {}
        for form in forms:
            for n in range(len(form) - 1, 0, -1):
                self._prefix_ends.setdefault(form[n - 1], []).append((n, form))
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

    def safe_end(self, text: str) -> int:
        """Where ``text`` may be cut and its head masked on its own: before a tail that could
        begin a form (a complete short form may be the start of a longer one), and never
        inside a match. Matches are searched from the start of ``text``, so they align as
        they do when the whole text is masked (a search started part-way can begin inside
        one form and step over the match the cut falls in)."""
        cut = len(text) - self.held_back(text)
        if self._pattern is not None and cut < len(text):
            for m in self._pattern.finditer(text):
                if m.start() < cut < m.end():
                    cut = m.start()
                    break
        return cut

    def held_back(self, text: str) -> int:
        """How many trailing characters of ``text`` could begin a form (wait for more output)."""
        hold = 0
        for n, form in self._prefix_ends.get(text[-1:], ()):  # only prefixes ending in text's last character
            if hold < n <= len(text) and text.endswith(form[:n]):
                hold = n
        return hold


class MaskedStream:
    """Output that arrives in pieces, masked even when a secret is split between two pieces:
    the end of each piece that could start a secret waits for the next piece (or ``flush``)."""

    def __init__(self, masker: Masker, emit: Callable[[str], None]):
        self.masker, self.emit, self.pending = masker, emit, ""

    def write(self, data: str) -> None:
        raw = self.pending + data  # ``pending`` is kept as it came (never emitted unmasked)
        cut = self.masker.safe_end(raw)
        self.pending = raw[cut:]
        if cut:
            self.emit(self.masker.text(raw[:cut]))

    def flush(self) -> None:
        if self.pending:
            text, self.pending = self.pending, ""
            self.emit(self.masker.text(text))
