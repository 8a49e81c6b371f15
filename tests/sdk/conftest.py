"""Fixtures for the SDK tests: the demo provider, in memory and as a real process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).parent
DEMO = HERE / "demo_provider.py"


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sdk_test_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def demo_module() -> ModuleType:
    return load_module(DEMO)


@pytest.fixture
def demo(demo_module: ModuleType):
    return demo_module.provider


@pytest.fixture(scope="session")
def demo_argv() -> list[str]:
    return [sys.executable, str(DEMO)]
