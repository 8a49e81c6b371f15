"""Serve a connection on the process's stdin/stdout, with the wire protected from the provider's own code.

Before serving, the real stdin/stdout are moved to private, non-inheritable
descriptors; fd 0 becomes /dev/null and fd 1 becomes stderr. So ``print()``,
C extensions writing to fd 1 and child processes (which inherit fds 0-2) can
neither corrupt the outgoing wire nor swallow incoming bytes.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import NoReturn

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream

from gleitzeit_sdk import pipes

Serve = Callable[[ByteReceiveStream, ByteSendStream], Awaitable[None]]

# If interpreter shutdown hangs (a non-daemon thread stuck in a handler's
# blocking call), exit anyway: the host allows 2 s after closing stdin.
EXIT_WATCHDOG = 0.5


def run(serve: Serve) -> NoReturn:
    wire_in, wire_out = claim_stdio()
    anyio.run(_serve_fds, serve, wire_in, wire_out, backend="asyncio")
    _exit(0)


def claim_stdio() -> tuple[int, int]:
    """Return private (input, output) descriptors of the wire; point fd 0 at /dev/null, fd 1 at stderr."""
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)  # os.dup makes them non-inheritable
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # stray prints reach the host's log promptly
    return wire_in, wire_out


async def _serve_fds(serve: Serve, wire_in: int, wire_out: int) -> None:
    receive = await pipes.open_receive(wire_in)
    send = await pipes.open_send(wire_out)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_sigterm, receive)
            await serve(receive, send)
            tg.cancel_scope.cancel()
    finally:
        with anyio.move_on_after(0.5, shield=True):
            await send.aclose()
        await receive.aclose()


async def _stop_on_sigterm(receive: ByteReceiveStream) -> None:
    """SIGTERM stops like stdin EOF (closing our end makes the read loop see EOF):
    handlers get their -32800, the lifespan cleans up (and stops its children), exit 0."""
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            await receive.aclose()
            return


def _exit(code: int) -> NoReturn:
    sys.stderr.flush()
    watchdog = threading.Timer(EXIT_WATCHDOG, os._exit, (code,))
    watchdog.daemon = True
    watchdog.start()
    sys.exit(code)
