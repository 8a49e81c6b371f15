"""Gleitzeit: local-first, polyglot workflow orchestrator."""

__version__ = "0.5.0"
