"""Announces maxMessageBytes 4096 and exits on any longer line, as a fragile provider might:
a checker that honours the announced limit sees it fail only the cases that test the limit."""

import os

from _demo import provider

from gleitzeit_sdk import framing
from gleitzeit_sdk.errors import MessageTooLarge

provider.max_message_bytes = 4096
original = framing.LineReader.receive_line


async def fragile(self):
    try:
        return await original(self)
    except MessageTooLarge:
        os._exit(3)


framing.LineReader.receive_line = fragile
provider.run()
