"""Gleitzeit provider SDK: the wire protocol v1 and helpers for provider authors."""
