"""Reads stdin and never answers anything: a hopeless provider the checker must give up on quickly."""

import sys

for _ in sys.stdin.buffer:
    pass
