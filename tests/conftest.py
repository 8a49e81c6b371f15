"""Shared fixtures. aiosqlite, redis.asyncio and jsonrpcserver are asyncio-only,
so every anyio test runs on asyncio."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
