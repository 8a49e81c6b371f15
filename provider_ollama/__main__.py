"""``python -m provider_ollama``: serve the llm/v1 protocol on stdin/stdout."""

from provider_ollama.provider import build_provider

if __name__ == "__main__":
    build_provider().run()
