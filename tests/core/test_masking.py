"""Masking known secret values: every encoding, and output that arrives in pieces split anywhere."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gleitzeit_core.redaction import MASK, Masker, MaskedStream

SECRETS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=12, max_size=40)


def streamed(masker: Masker, pieces: list[str]) -> str:
    out: list[str] = []
    stream = MaskedStream(masker, out.append)
    for piece in pieces:
        stream.write(piece)
    stream.flush()
    return "".join(out)


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="),
            quote(secret, safe=""), quote_plus(secret),
            base64.b64encode(b"Basic user:" + raw + b" tail").decode()]


@settings(max_examples=200, deadline=None)
@given(secret=SECRETS, filler=st.text(max_size=30), cuts=st.lists(st.integers(0, 400), max_size=8))
@example(secret="000000000000", filler="", cuts=[400])  # a secret of base64 letters beside its own base64
def test_output_split_anywhere_is_masked_as_if_it_came_whole(secret, filler, cuts):
    masker = Masker([secret])
    text = filler.join(["start", *encodings(secret), "end"])
    bounds = sorted({c % (len(text) + 1) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)])]
    got = streamed(masker, pieces)
    for form in encodings(secret)[:5]:
        assert form not in got
    assert got.count(MASK) >= 5
    if not set(filler + "startend") & set(secret):  # no overlaps: the very same text as masking it whole
        assert got == masker.text(text)


def test_values_are_masked_in_keys_and_nested_strings():
    masker = Masker(["a-long-secret-value"])
    assert masker.value({"a-long-secret-value": ["x a-long-secret-value y", 3, None]}) == {MASK: [f"x {MASK} y", 3, None]}
