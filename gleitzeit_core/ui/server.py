"""Serving the dashboard: bind the socket ourselves (so `--port 0` can say which
port it got, and a busy port is one clear line), then run uvicorn on it."""

from __future__ import annotations

import ipaddress
import socket

import uvicorn
from starlette.applications import Starlette

from gleitzeit_core.errors import GleitzeitError

#: seconds uvicorn waits for open connections (live event streams) when stopping
SHUTDOWN_GRACE_S = 2


class CannotServe(GleitzeitError):
    exit_code = 1


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; raises CannotServe with the reason."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CannotServe(f"cannot serve on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CannotServe(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def is_loopback(sock: socket.socket) -> bool:
    return ipaddress.ip_address(sock.getsockname()[0]).is_loopback


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def serve(app: Starlette, sock: socket.socket) -> None:
    """Until SIGINT/SIGTERM (uvicorn's own handlers stop it gracefully)."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", loop="asyncio",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    await uvicorn.Server(config).serve(sockets=[sock])
