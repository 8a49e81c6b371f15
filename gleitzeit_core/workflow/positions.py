"""Where a YAML key or value was written, packed into one int (``source.Marks`` keeps them).

A position is ``line << COL_BITS | column`` (columns past ``COL_MAX`` read as that), and a
mapping entry's key and value positions one int, ``key << PAIR_BITS | value``: a tuple of
tuples per key held ~250 bytes, most of the memory of loading a 100,000-task YAML file.
"""

from __future__ import annotations

from collections.abc import Sequence

COL_BITS, PAIR_BITS = 24, 64
COL_MAX, VALUE_MASK = (1 << COL_BITS) - 1, (1 << PAIR_BITS) - 1


def pack(line: int, column: int) -> int:
    return line << COL_BITS | min(column, COL_MAX)


class PackedPairs:
    """A small mapping's key -> ``key << PAIR_BITS | value`` positions, as ``dict.get`` reads them:
    the key tuple is shared by every mapping written with the same keys, the positions are
    two machine words a key (a dict of ints held ~2.5x as much: most of a 100,000-task YAML
    file's memory). Read-only: ``as_dict`` gives a copy to edit."""

    __slots__ = ("keys", "words")
    LIMIT = 8  # keys; a larger mapping keeps a dict (a lookup here walks the key tuple)

    def __init__(self, keys: tuple[str, ...], words: Sequence[int]):
        self.keys, self.words = keys, words

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __getitem__(self, key: str) -> int:
        try:
            i = 2 * self.keys.index(key)
        except ValueError:
            raise KeyError(key) from None
        return self.words[i] << PAIR_BITS | self.words[i + 1]

    def as_dict(self) -> dict[str, int]:
        return {key: self[key] for key in self.keys}
