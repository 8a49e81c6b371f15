"""MCP tools as Gleitzeit methods: descriptors from ``tools/list``, task results
from ``tools/call`` results. Pure functions on JSON values; no I/O.

The shapes here are the documented contract (docs/mcp.md, "Results").
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gleitzeit_sdk import codes
from gleitzeit_sdk.errors import RpcError

log = logging.getLogger("gleitzeit.mcp")

#: The action part of a method name (sdk/schema/method-descriptor.json); MCP's own rule is
#: stricter (``A-Za-z0-9_-.``, 1–128 chars), so only odd servers lose a tool to it.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_./-]{1,128}")

#: The task result of a tool that returns no ``structuredContent``.
CONTENT_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "content": {"type": "array", "items": {"type": "object"}},
        "text": {"type": "string"},
    },
    "required": ["content", "text"],
}


def descriptors(prefix: str, tools: list[Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Method descriptors for a server's tools, and method name → tool name.

    A tool without a usable name or input schema is left out with a warning:
    one odd tool must not make the whole server unusable.
    """
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for tool in tools:
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            log.warning("MCP server %s: skipping a tool with an unusable name %r", prefix, name)
            continue
        schema = tool.get("inputSchema")
        if not isinstance(schema, dict):
            log.warning("MCP server %s: skipping tool %r: inputSchema is not an object", prefix, name)
            continue
        method = f"{prefix}/{name}"
        if method in names:
            log.warning("MCP server %s: tool %r is listed twice; keeping the first", prefix, name)
            continue
        output = tool.get("outputSchema")
        description = tool.get("description") or tool.get("title") or ""
        out.append({
            "name": method,
            "description": str(description),
            "paramsSchema": schema,
            "resultSchema": output if isinstance(output, (dict, bool)) else CONTENT_RESULT_SCHEMA,
            # Annotations (idempotentHint...) are untrusted by the spec; re-runs follow the task's retry policy.
            "idempotent": False,
            "defaultTimeoutSec": None,
            "streaming": False,
        })
        names[method] = name
    return out, names


def task_result(result: Any) -> Any:
    """A ``CallToolResult`` as the task's result, or RpcError for a failed call.

    ``structuredContent`` when the server sent one (any JSON value); otherwise
    ``{"content": [blocks as sent], "text": "<text blocks joined by newlines>"}``.
    ``isError: true`` becomes a -32803 task failure, retryable (the workflow's
    ``retry:`` decides); an ``input_required`` result a non-retryable one.
    """
    if not isinstance(result, dict):
        raise RpcError(codes.PROVIDER_ERROR, "the MCP server sent a tools/call result that is not an object")
    if result.get("resultType") == "input_required":
        raise RpcError(codes.TASK_FAILED, "the tool asked for user input", data={
            "message": "the tool asked for user input (elicitation), which an unattended run cannot give",
            "type": "InputRequired", "retryable": False})
    content = result.get("content")
    blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
    text = "\n".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    if result.get("isError") is True:
        raise RpcError(codes.TASK_FAILED, text or "tool error", data={
            "message": text or "the tool reported an error without a message", "type": "ToolError",
            "retryable": True, "details": {"content": blocks, "structuredContent": result.get("structuredContent")}})
    if "structuredContent" in result:
        return result["structuredContent"]
    return {"content": blocks, "text": text}
