"""A provider that does nothing: `noop/pass` returns its `value` unchanged.

Scenario 6 runs the workflow shapes through it, so the figures show the
engine's own cost per task (scheduling, store writes, JSON-RPC over pipes)
apart from the Python sandbox's. Started by the host from `noop.yaml`.
"""

from __future__ import annotations

from typing import Any

from gleitzeit_sdk import Provider, RequestContext

MAX_IN_FLIGHT = 64

provider = Provider("bench-noop", "0.1.0", max_in_flight=MAX_IN_FLIGHT)


@provider.method("noop/pass", idempotent=True)
async def pass_(ctx: RequestContext, value: Any = None) -> dict[str, Any]:
    """Return `value` as `{"value": value}`: the cheapest possible task."""
    return {"value": value}


if __name__ == "__main__":
    provider.run()
