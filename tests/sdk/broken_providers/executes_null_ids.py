"""Treats `"id": null` as a request (JSON-RPC allows it; protocol v1 does not)."""

from _demo import provider

from gleitzeit_sdk import messages

original = messages.parse_message


def lenient(obj):
    if isinstance(obj, dict) and "method" in obj and "id" in obj and obj["id"] is None:
        return messages.Request(None, obj["method"], obj.get("params"))
    return original(obj)


messages.parse_message = lenient
provider.run()
