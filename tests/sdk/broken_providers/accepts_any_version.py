"""Accepts any protocolVersion instead of refusing unknown ones."""

from _demo import provider

from gleitzeit_sdk import server
from gleitzeit_sdk.messages import Request

original = server.Connection._initialize


async def lenient(self, req):
    params = dict(req.params or {}) | {"protocolVersion": "1"}
    return await original(self, Request(req.id, req.method, params))


server.Connection._initialize = lenient
provider.run()
