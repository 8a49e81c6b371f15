"""JSON Schemas of the llm/v1 methods: what the host validates params against before a call,
and what ``gleitzeit`` can show users. Unknown parameters are rejected so typos surface."""

from __future__ import annotations

from typing import Any

_STRINGS = {"type": "array", "items": {"type": "string"}}

MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool"]},
        "content": {"type": "string"},
        "images": {**_STRINGS, "description": "base64-encoded images"},
    },
    "required": ["role", "content"],
}

#: Set by the engine from the workflow's checked ``sandbox:`` blocks (never by a task):
#: its ``read`` folders are where ``file_path``/``image_path`` may also lie.
SANDBOX = {"type": "object", "description": "the workflow's sandbox block, set by the engine"}

_GENERATION = {
    "model": {"type": "string", "description": "model name; default from config default_models"},
    "system": {"type": "string", "description": "system prompt"},
    "temperature": {"type": "number", "minimum": 0},
    "max_tokens": {"type": "integer", "minimum": 1, "description": "Ollama: options.num_predict"},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "seed": {"type": "integer"},
    "stop": {"anyOf": [{"type": "string"}, _STRINGS]},
    "format": {
        "anyOf": [{"const": "json"}, {"type": "object"}],
        "description": "'json' or a JSON Schema; the reply is parsed into `parsed` and checked",
    },
    "options": {"type": "object", "description": "passed through to the server as model options"},
    "keep_alive": {"type": ["string", "integer"], "description": "Ollama only"},
    "think": {"type": "boolean", "description": "Ollama only, for models that think"},
    "file_path": {"anyOf": [{"type": "string"}, _STRINGS],
                  "description": "text file(s) appended to the last user message; relative to the workflow "
                  "folder, or inside it or a sandbox.read folder (read as the sandbox would)"},
    "sandbox": SANDBOX,
}


def _object(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False, **extra}
    if required:
        schema["required"] = required
    return schema


CHAT = _object(
    {
        **_GENERATION,
        "messages": {"type": "array", "items": MESSAGE, "minItems": 1},
        "prompt": {"type": "string", "description": "shortcut for one user message"},
    },
    anyOf=[{"required": ["messages"]}, {"required": ["prompt"]}],
)

VISION = _object(
    {
        **CHAT["properties"],
        "image_path": {"anyOf": [{"type": "string"}, _STRINGS],
                       "description": "image file(s), relative to the workflow folder, read and encoded"},
        "images": {**_STRINGS, "description": "base64-encoded images"},
    },
    anyOf=[{"required": ["messages"]}, {"required": ["prompt"]}],
)

GENERATE = _object(
    {
        **_GENERATION,
        "prompt": {"type": "string"},
        "images": {**_STRINGS, "description": "base64-encoded images"},
    },
    ["prompt"],
)

EMBED = _object(
    {
        "model": {"type": "string", "description": "model name; default from config default_models.embedding"},
        "input": {"anyOf": [{"type": "string"}, {**_STRINGS, "minItems": 1}]},
        "sandbox": SANDBOX,
    },
    ["input"],
)

MODELS = _object({"sandbox": SANDBOX})

_USAGE = {
    "type": "object",
    "properties": {"prompt_tokens": {"type": ["integer", "null"]}, "completion_tokens": {"type": ["integer", "null"]}},
}
_DURATIONS = {
    "type": "object",
    "properties": {k: {"type": ["number", "null"]} for k in ("load_ms", "prompt_eval_ms", "eval_ms", "total_ms")},
}

COMPLETION_RESULT = {
    "type": "object",
    "properties": {
        "content": {"type": "string"},
        "response": {"type": "string", "description": "alias of content (predecessor name)"},
        "model": {"type": "string"},
        "role": {"type": "string"},
        "done_reason": {"type": ["string", "null"]},
        "usage": _USAGE,
        "durations": _DURATIONS,
        "thinking": {"type": "string"},
        "parsed": {"description": "the reply's JSON value when `format` was given"},
    },
    "required": ["content", "response", "model", "role", "done_reason", "usage", "durations"],
}

EMBED_RESULT = {
    "type": "object",
    "properties": {
        "embeddings": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "model": {"type": "string"},
        "usage": _USAGE,
        "durations": _DURATIONS,
    },
    "required": ["embeddings", "model"],
}

MODELS_RESULT = {
    "type": "object",
    "properties": {
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "size": {"type": ["integer", "null"]},
                    "modified_at": {"type": ["string", "null"]},
                    "details": {"type": "object"},
                },
                "required": ["name"],
            },
        }
    },
    "required": ["models"],
}
