"""Workflows in the predecessor's format, run by the real `gleitzeit` against the fake Ollama
server of tests/provider_ollama (imported by plain name, as that folder's tests do)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "provider_ollama"))

from fake_ollama import FakeOllama  # noqa: E402
from tests.cli.conftest import open_dir  # noqa: E402


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def home() -> Iterator[Path]:
    yield from open_dir("gz-legacy-home-")


@pytest.fixture
def work() -> Iterator[Path]:
    """The folder a user runs from; workflows live in it or below it."""
    yield from open_dir("gz-legacy-work-")
