"""Starting providers to ask how they are: handshake, ping, methods, `health`.

Shared by `provider list`, `provider health` and `status`. Every probe runs
in parallel with the others under its own deadline; one provider that hangs
or crashes becomes one row saying so, never a stuck or failed command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from gleitzeit_core.config import Config
from gleitzeit_core.errors import GleitzeitError

if TYPE_CHECKING:
    from gleitzeit_core.providers.manifest import ProviderManifest

#: on top of the manifest's startup_timeout: ping and health answer within seconds
PROBE_SLACK_S = 10.0


@dataclass
class Probe:
    name: str
    version: str
    source: str
    protocols: list[str]
    state: str = "ok"  # ok | unhealthy | error | disabled
    methods: list[str] = field(default_factory=list)
    ping_ms: float | None = None
    pid: int | None = None
    health: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "manifest": self.source, "protocols": self.protocols,
                "state": self.state, "healthy": self.state == "ok", "methods": self.methods, "ping_ms": self.ping_ms,
                "pid": self.pid, "health": self.health, "error": self.error}


def health_problem(health: Any) -> str | None:
    """Why a `health` answer means "not usable": its status, or an unreachable backing server
    (the LLM provider reports Ollama's reachability as ``server``)."""
    if not isinstance(health, dict):
        return "health answer is not an object"
    if health.get("status") != "ok":
        return f"status {health.get('status')!r}"
    server = health.get("server")
    if server not in (None, "ok"):
        return f"server {server}" + (f": {health['error']}" if health.get("error") else "")
    return None


def manifests(config: Config) -> tuple[list[ProviderManifest], list[str]]:
    from gleitzeit_core.providers.host import discover_manifests

    return discover_manifests(config["providers.directory"])


async def probe_all(config: Config, chosen: list[ProviderManifest], *, health: bool) -> list[Probe]:
    """One Probe per manifest, in the given order; disabled ones are not started."""
    from gleitzeit_sdk.errors import RpcError

    from gleitzeit_core.dispatch.local import enabled, provider_config
    from gleitzeit_core.providers.actor import served_protocols
    from gleitzeit_core.providers.connection import ConnectionClosed
    from gleitzeit_core.providers.host import ProviderHost

    probes = [Probe(m.name, m.version, m.source, list(m.protocols)) for m in chosen]
    host = ProviderHost(chosen, config=provider_config(config), log_level=str(config["logging.level"]))
    async with host:
        async def one(m: ProviderManifest, p: Probe) -> None:
            if not enabled(config, m):
                p.state = "disabled"
                return
            actor = host.actor(m.name)
            try:
                with anyio.fail_after(m.startup_timeout + PROBE_SLACK_S):
                    p.ping_ms = round(await actor.ping() * 1000, 3)
                    p.methods = sorted(actor.methods)
                    p.protocols = served_protocols(actor.info)  # what it declares, not what a manifest says
                    p.pid = actor.pid
                    if health:
                        p.health = await actor.call_plain("health")
            except TimeoutError:
                p.state, p.error = "error", f"no answer within {m.startup_timeout + PROBE_SLACK_S:g} s"
                return
            except (GleitzeitError, ConnectionClosed, OSError) as exc:
                p.state, p.error = "error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return
            except RpcError as exc:  # the provider answered `health` with an error
                p.state, p.error = "unhealthy", str(exc)
                return
            problem = health_problem(p.health) if health else None
            if problem:
                p.state, p.error = "unhealthy", problem

        async with anyio.create_task_group() as tg:
            for m, p in zip(chosen, probes):
                tg.start_soon(one, m, p)
    return probes
