"""Gleitzeit's Python provider: runs `python/execute` tasks in a sandboxed child process.

Kept import-free on purpose: the sandbox fork server imports this package and must stay small.
"""

__all__: tuple[str, ...] = ()
