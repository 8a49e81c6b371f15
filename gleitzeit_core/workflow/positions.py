"""Where a YAML key or value was written, packed into one int (``source.Marks`` keeps them).

A position is ``line << COL_BITS | column`` (columns past ``COL_MAX`` read as that), and a
mapping entry's key and value positions one int, ``key << PAIR_BITS | value``: a tuple of
tuples per key held ~250 bytes, most of the memory of loading a 100,000-task YAML file.
"""

from __future__ import annotations

COL_BITS, PAIR_BITS = 24, 64
COL_MAX, VALUE_MASK = (1 << COL_BITS) - 1, (1 << PAIR_BITS) - 1


def pack(line: int, column: int) -> int:
    return line << COL_BITS | min(column, COL_MAX)
