"""Every example in sdk/PROTOCOL.md, copied out of the Markdown exactly as printed: each JSON
message matches its schema, and the task request, the initialize params and the manifest
sample are used for real (sent to the Python provider / the demo provider, loaded as a manifest)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import anyio
import pytest
import yaml

from gleitzeit_core.providers.manifest import manifest_problems
from gleitzeit_sdk.schemas import ProtocolSchemas
from gleitzeit_sdk.testing import spawn

REPO = Path(__file__).resolve().parents[2]
TEXT = (REPO / "sdk" / "PROTOCOL.md").read_text()
SCHEMAS = ProtocolSchemas()


def json_blocks() -> list[dict]:
    out = []
    for block in re.findall(r"```json\n(.*?)```", TEXT, re.S):
        try:
            out.append(json.loads(block))
        except json.JSONDecodeError:
            assert "<method descriptor>" in block, f"an example that is not JSON:\n{block}"  # the one elided list
    return out


def schema_for(example: dict) -> str:
    if example.get("method") == "$/cancelRequest":
        return "cancel-request.json"
    if "method" in example:
        return {"$/progress": "progress.json", "$/output": "output.json", "$/log": "log.json"}.get(
            example["method"], "task-request.json")
    if "host" in example:
        return "initialize-params.json"
    if "paramsSchema" in example:
        return "method-descriptor.json"
    if "retryable" in example:
        return "error-data.json"
    raise AssertionError(f"no schema for the example {example}")


def test_every_json_example_matches_its_schema():
    examples = json_blocks()
    assert len(examples) >= 8
    for example in examples:
        name = schema_for(example)
        assert SCHEMAS.errors(name, example) == [], (name, example)


def test_the_task_request_example_runs_on_the_python_provider(tmp_path: Path):
    (request,) = [e for e in json_blocks() if e.get("method") == "python/execute"]
    (init,) = [e for e in json_blocks() if "host" in e]

    async def main() -> dict:
        env = {"PATH": os.environ["PATH"]}
        async with spawn([sys.executable, "-m", "provider_python"], env=env) as proc:
            config = {"sandbox": {"state_dir": str(tmp_path)}}
            await proc.client.handshake(timeout=30, **{**init, "config": config})
            await proc.client.send(request)
            return await proc.client.response_to(request["id"], timeout=60)

    resp = anyio.run(main)
    assert resp["result"]["result"] == 42, resp


def test_the_conformance_block_is_a_valid_manifest_fragment():
    (block,) = re.findall(r"```yaml\n(conformance:.*?)```", TEXT, re.S)
    problems = manifest_problems({"name": "x", "command": "x", **yaml.safe_load(block)}, "PROTOCOL.md")
    assert problems == []


@pytest.mark.parametrize("key", ["name", "command", "args", "env", "inherit_env", "cwd", "max_in_flight",
                                 "startup_timeout", "restart", "protocols", "conformance", "config"])
def test_every_manifest_key_is_documented(key: str):
    section = TEXT.split("## 9. The provider manifest", 1)[1].split("## 10.", 1)[0]
    assert f"| `{key}`" in section or f"`{key}`," in section
