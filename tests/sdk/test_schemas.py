"""sdk/schema/*.json: valid schemas, and real traffic of a provider process validates against them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gleitzeit_sdk.schemas import BASE_URI, NOTIFICATION_SCHEMAS, RESULT_SCHEMAS, SCHEMA_DIR, ProtocolSchemas
from gleitzeit_sdk.testing import WireClient, id_key, initialize_params, spawn

HOST_SCHEMAS = {
    "initialize": "initialize.json",
    "initialized": "initialized.json",
    "ping": "ping.json",
    "health": "health.json",
    "shutdown": "shutdown.json",
    "$/cancelRequest": "cancel-request.json",
}


def host_schema(msg: dict[str, Any]) -> str:
    return HOST_SCHEMAS.get(msg["method"], "task-request.json")


def test_every_schema_file_is_valid_2020_12_with_its_own_id() -> None:
    files = sorted(SCHEMA_DIR.glob("*.json"))
    assert len(files) >= 20
    for path in files:
        doc = json.loads(path.read_text())
        Draft202012Validator.check_schema(doc)
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"] == BASE_URI + path.name
        assert doc.get("description"), path.name


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        ("progress.json", {"jsonrpc": "2.0", "method": "$/progress", "params": {"progress": 1}}),
        ("output.json", {"jsonrpc": "2.0", "method": "$/output", "params": {"token": 1, "seq": 0, "stream": "stdin", "data": ""}}),
        ("log.json", {"jsonrpc": "2.0", "method": "$/log", "params": {"level": "verbose", "message": "x"}}),
        ("error-response.json", {"jsonrpc": "2.0", "id": 1, "error": {"code": -32803, "message": "failed"}}),
        ("error-response.json", {"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "busy", "data": {"type": "Overloaded", "message": "busy", "retryable": False}}}),
        ("response.json", {"jsonrpc": "2.0", "id": 1, "result": 1, "error": {"code": 1, "message": "x"}}),
        ("request.json", {"jsonrpc": "2.0", "id": None, "method": "ping"}),
        ("notification.json", {"jsonrpc": "2.0", "id": 3, "method": "$/progress"}),
        ("initialize-result.json", {"protocolVersion": "1", "provider": {"name": "x", "version": "1"}, "capabilities": {}, "methods": []}),
        ("method-descriptor.json", {"name": "Execute", "paramsSchema": {}}),
        ("ping-result.json", {"pong": True}),
    ],
)
def test_schemas_reject_broken_messages(name: str, instance: Any) -> None:
    assert ProtocolSchemas().errors(name, instance)


async def _traffic(argv: list[str]) -> list[WireClient]:
    """Drive a provider process through every message type; return the clients with their logs."""
    clients = []
    async with spawn(argv) as fresh:
        clients.append(fresh.client)
        await fresh.client.request("initialize", initialize_params(protocolVersion="0"))
        await fresh.client.request("demo/echo", {"text": "x"})  # not initialized
        await fresh.client.send_raw(b"{broken\n")
        await fresh.client.receive()
    async with spawn(argv) as proc:
        client = proc.client
        clients.append(client)
        await client.handshake(logLevel="debug")
        await client.request("ping")
        await client.request("health")
        await client.request("demo/echo", {"text": "ü✓", "_meta": {"taskId": "t", "runId": "r", "attempt": 2, "traceparent": "00-x-y-01"}})
        await client.request("demo/slow", {"seconds": 0.05, "steps": 3, "_meta": {"progressToken": "tok"}})
        await client.request("demo/log", {"level": "warning", "message": "careful"})
        await client.request("demo/fail")
        await client.request("demo/bug")
        await client.request("no/such")
        await client.request("demo/echo", {"text": 1})
        busy = [client.next_id() for _ in range(2)]
        for id in busy:
            await client.send({"jsonrpc": "2.0", "id": id, "method": "demo/slow", "params": {"seconds": 30}})
        await client.request("demo/echo", {"text": "x"})  # overloaded
        for id in busy:
            await client.notify("$/cancelRequest", {"id": id})
            await client.response_to(id)
        await client.request("shutdown")
    return clients


@pytest.mark.anyio
async def test_real_traffic_validates_against_the_schemas(demo_argv: list[str]) -> None:
    schemas = ProtocolSchemas()
    clients = await _traffic(demo_argv)
    used: set[str] = set()
    problems: list[str] = []
    for client in clients:
        for msg in client.sent:
            name = host_schema(msg)
            used.add(name)
            problems += [f"sent {msg['method']}: {e}" for e in schemas.errors(name, msg)]
        for msg in client.log:
            method = client.requests.get(id_key(msg.get("id")))
            problems += [f"received {json.dumps(msg)[:100]}: {e}" for e in schemas.check_outgoing(msg, method)]
            used.add(_received_schema(msg, method))
    assert problems == []
    assert used >= {
        "initialize.json", "initialized.json", "ping.json", "health.json", "shutdown.json", "cancel-request.json",
        "task-request.json", "initialize-result.json", "ping-result.json", "health-result.json",
        "shutdown-result.json", "progress.json", "output.json", "log.json", "error-response.json",
    }
    codes_seen = {m["error"]["code"] for c in clients for m in c.log if "error" in m}
    assert codes_seen == {-32700, -32602, -32002, -32803, -32603, -32601, -32001, -32800}


def _received_schema(msg: dict[str, Any], method: str | None) -> str:
    if "method" in msg:
        return NOTIFICATION_SCHEMAS.get(msg["method"], "notification.json")
    if "error" in msg:
        return "error-response.json"
    return RESULT_SCHEMAS.get(method or "", "response.json")


def test_no_tracked_symlink_dangles() -> None:
    repo = Path(__file__).resolve().parents[2]
    tracked = subprocess.run(["git", "ls-files", "-s"], cwd=repo, capture_output=True, text=True).stdout.splitlines()
    links = [line.split("\t", 1)[1] for line in tracked if line.startswith("120000")]
    assert links, "sdk/schema is a tracked symlink"
    assert [p for p in links if not (repo / p).exists()] == []
