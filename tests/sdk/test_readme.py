"""sdk/README.md's example provider says what it does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gleitzeit_sdk.testing import connect

README = (Path(__file__).parent.parent.parent / "sdk" / "README.md").read_text()

pytestmark = pytest.mark.anyio


def readme_provider():
    namespace: dict = {"__name__": "wordy"}
    exec(compile(re.findall(r"```python\n(.*?)```", README, re.S)[0], "README.md", "exec"), namespace)
    return namespace["provider"]


async def test_the_documented_schema_and_error_are_what_the_sdk_produces() -> None:
    provider = readme_provider()
    claimed_schema = json.loads(re.search(r"`(\{\"type\": \"object\".*?)`\.", README).group(1))
    assert provider.methods["wordy/count"].params_schema == claimed_schema
    claimed_error = re.search(r"`-32602 (invalid params for wordy/count: .*?)`", README).group(1)
    async with connect(provider) as client:
        await client.handshake()
        resp = await client.request("wordy/count", {"text": 5})
        ok = await client.request("wordy/count", {"text": "a b a", "unique": True})
    assert resp["error"] == {"code": -32602, "message": claimed_error}
    assert ok["result"] == {"words": 2}
