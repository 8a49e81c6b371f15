"""Gleitzeit's LLM provider: ``llm/v1`` tasks run on an Ollama or OpenAI-compatible server."""

__version__ = "0.5.0"
