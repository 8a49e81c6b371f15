"""Answers unknown notifications with an error, as if they were requests."""

from _demo import provider

from gleitzeit_sdk import messages, server
from gleitzeit_sdk.errors import RpcError

original = server.Connection._on_notification


def chatty(self, note):
    original(self, note)
    if note.method not in ("initialized", "$/cancelRequest"):
        reply = messages.error_response(None, RpcError(-32601, f"method not found: {note.method}"))
        self._tg.start_soon(self._send, reply)


server.Connection._on_notification = chatty
provider.run()
