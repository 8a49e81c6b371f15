"""Exits when a line is not valid JSON instead of answering -32700."""

import os

from _demo import provider

from gleitzeit_sdk import messages
from gleitzeit_sdk.errors import ProtocolViolation

original = messages.decode


def fragile(line):
    try:
        return original(line)
    except ProtocolViolation:
        os._exit(3)


messages.decode = fragile
provider.run()
