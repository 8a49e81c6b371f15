"""A provider for the cache tests: every call appends a line to $ECHO_MARKS (a side-effect
marker), its version is $ECHO_VERSION, and `echo/now` is declared non-cacheable."""

import os

import anyio

from gleitzeit_sdk import Provider, RequestContext

provider = Provider(name="echo", version=os.environ.get("ECHO_VERSION", "1.0.0"), max_in_flight=4)


def _mark(line: str) -> None:
    with open(os.environ["ECHO_MARKS"], "a", encoding="utf-8") as f:
        f.write(line + "\n")


@provider.method("echo/say", idempotent=True)
async def say(ctx: RequestContext, text: str, pause: float = 0) -> dict:
    """Return the text, noting the call (after ``pause`` seconds: calls that overlap)."""
    _mark(f"say {text}")
    await anyio.sleep(pause)
    return {"text": text}


@provider.method("echo/now", cacheable=False)
async def now(ctx: RequestContext, text: str = "") -> dict:
    """A method with side effects: never served from the cache."""
    _mark(f"now {text}")
    return {"text": text}


if __name__ == "__main__":
    provider.run()
