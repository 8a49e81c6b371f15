"""Task parameters -> what the server needs: files read, images encoded, replies checked.

Every problem with the user's input is a non-retryable ``TaskFailed`` naming the parameter
(retrying cannot make a missing file appear); a reply that misses the requested format is
retryable (the model may do better next time).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema

from gleitzeit_sdk.errors import TaskFailed
from gleitzeit_sdk.confined import FileRefused, Roots, read_confined

MAX_TEXT_FILE_BYTES = 4 * 1024 * 1024  # a prompt bigger than this is a mistake, not a prompt
MAX_IMAGE_BYTES = 20 * 1024 * 1024


def bad_input(message: str) -> TaskFailed:
    return TaskFailed(message, type="InvalidInput", retryable=False)


def chat_messages(messages: list[dict[str, Any]] | None, system: str | None, prompt: str | None) -> list[dict[str, Any]]:
    """``messages`` as given (copied), else one user message from ``prompt``; ``system`` first."""
    out = [dict(m) for m in messages or []]
    if not out and prompt is not None:
        out = [{"role": "user", "content": prompt}]
    if not out:
        raise bad_input("messages: give at least one message (or a prompt)")
    if system is not None:
        out = [{"role": "system", "content": system}] + [m for m in out if m.get("role") != "system"]
    return out


def file_block(file_path: str, roots: Roots) -> str:
    """Predecessor-compatible text appended for ``file_path``: ``\\n\\nFile content from P:\\nTEXT``."""
    content = read_text(file_path, "file_path", roots)
    return f"\n\nFile content from {roots.shown(file_path)}:\n{content}"


def append_to_last_user(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            messages[i] = {**messages[i], "content": str(messages[i].get("content") or "") + text}
            return messages
    return messages + [{"role": "user", "content": text.lstrip("\n")}]


def attach_images(messages: list[dict[str, Any]], images: list[str]) -> list[dict[str, Any]]:
    """Adds base64 ``images`` to the last user message; vision without any image is an error."""
    if not images:
        if not any(m.get("images") for m in messages):
            raise bad_input("image_path: llm/vision needs an image (image_path, images, or images on a message)")
        return messages
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        raise bad_input("messages: llm/vision needs a user message to attach the images to")
    last = messages[users[-1]]
    messages[users[-1]] = {**last, "images": list(last.get("images") or []) + images}
    return messages


def read_text(path: str, param: str, roots: Roots) -> str:
    """A text file under the sandbox's rules (``gleitzeit_sdk.confined``)."""
    data = _read(path, param, roots, MAX_TEXT_FILE_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_input(f"{param}: {path!r} is not a UTF-8 text file") from None


def encode_images(paths: list[str], param: str, roots: Roots) -> list[str]:
    return [base64.b64encode(_read(p, param, roots, MAX_IMAGE_BYTES)).decode("ascii") for p in paths]


def _read(path: str, param: str, roots: Roots, limit: int) -> bytes:
    try:
        return read_confined(path, roots, limit)
    except FileRefused as exc:
        raise bad_input(f"{param}: {exc}") from None


def parse_structured(content: str, format: str | dict[str, Any]) -> Any:
    """The reply's JSON value; checked against ``format`` when it is a JSON Schema."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        raise TaskFailed(
            f"format: the reply is not valid JSON ({exc.msg} at char {exc.pos}): {content[:120]!r}",
            type="FormatMismatch",
            retryable=True,
        ) from None
    if isinstance(format, dict):
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(format).iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise TaskFailed(
                f"format: the reply does not match the schema at {where}: {error.message}",
                type="FormatMismatch",
                retryable=True,
                details={"reply": content[:2000]},
            )
    return value
