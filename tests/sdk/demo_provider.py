"""A provider exercising every SDK feature; run as a subprocess by the tests and the conformance suite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio

from gleitzeit_sdk import Provider, RequestContext, TaskFailed

provider = Provider(name="demo", version="1.2.3", max_in_flight=int(os.environ.get("DEMO_MAX_IN_FLIGHT", "2")))


@provider.lifespan
async def lifespan(config: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    print("lifespan starting", file=sys.stderr)
    yield {"greeting": config.get("greeting", "hello")}


@provider.health_check
async def health() -> dict[str, Any]:
    return {"pid": os.getpid()}


@provider.method("demo/echo", idempotent=True)
async def echo(ctx: RequestContext, text: str, repeat: int = 1) -> dict[str, Any]:
    """Return the text, repeated."""
    return {"text": text * repeat, "greeting": ctx.state["greeting"], "meta": ctx.meta, "attempt": ctx.attempt}


@provider.method("demo/print")
async def noisy(ctx: RequestContext, text: str) -> str:
    """Print to stdout, which must land on stderr, not on the wire."""
    print(text)
    os.write(1, b"raw write to fd 1\n")
    return text


@provider.method("demo/child")
async def child(ctx: RequestContext) -> int:
    """Run a child that inherits fds 0-2: it must see neither the wire's stdin nor its stdout."""
    code = "import sys; print('child says hi'); print('child read', repr(sys.stdin.read()))"
    done = await anyio.to_thread.run_sync(lambda: subprocess.run([sys.executable, "-c", code]))
    return done.returncode


@provider.method("demo/slow", default_timeout=60)
async def slow(ctx: RequestContext, seconds: float = 30.0, steps: int = 10) -> dict[str, Any]:
    """Sleep in steps, reporting progress and output each step."""
    for step in range(1, steps + 1):
        await anyio.sleep(seconds / steps)
        await ctx.progress(step, total=steps, message=f"step {step}")
        await ctx.output("stdout", f"step {step}\n")
    return {"slept": seconds}


@provider.method("demo/fail")
async def fail(ctx: RequestContext, retryable: bool = False) -> None:
    raise TaskFailed("it went wrong", type="ValueError", retryable=retryable, details={"line": 3})


@provider.method("demo/bug")
async def bug(ctx: RequestContext) -> int:
    return 1 // 0


@provider.method("demo/log")
async def log(ctx: RequestContext, level: str, message: str) -> None:
    await ctx.log(level, message, logger="demo")


@provider.method(
    "demo/run",
    params_schema={"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
    result_schema={"type": "object"},
    code_params={"code": "python"},
    description="Pretend to run code.",
)
async def run_code(ctx: RequestContext, code: str) -> dict[str, Any]:
    return {"ran": len(code)}


if __name__ == "__main__":
    provider.run()
