"""Run the user's source in this process and describe the outcome as a JSON-ready record.

The record is what travels back on the result channel; the user's stdout is never parsed.
"""

from __future__ import annotations

import builtins
import json
import linecache
import sys
import time
import traceback
import types
from types import TracebackType
from typing import Any, Mapping

INLINE_FILENAME = "<code>"


def run(req: Mapping[str, Any]) -> str:
    """Execute `req["code"]` (or the file `req["file"]`) with `context` as a global; return the
    outcome as one JSON document."""
    filename = req.get("file") or INLINE_FILENAME
    started = time.perf_counter()
    try:
        source = _source(req, filename)
    except OSError as exc:
        return _error(type(exc).__name__,
                      f"cannot read file {filename} inside the sandbox ({exc.strerror}); only the workflow "
                      "folder, sandbox.read paths and the workspace are visible", None, started)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    main = types.ModuleType("__main__")  # a real module, so pickle (multiprocessing) finds user functions
    main.__dict__.update({"__builtins__": builtins, "__file__": filename, "context": req.get("context") or {}})
    sys.modules["__main__"] = main
    scope = main.__dict__
    try:
        exec(compile(source, filename, "exec"), scope)  # noqa: S102 - running user code is the point
    except SystemExit as exc:
        if exc.code not in (None, 0):
            return _exception(exc, filename, started)
    except BaseException as exc:  # noqa: BLE001 - every user failure becomes a record
        return _exception(exc, filename, started)
    duration = _ms(started)
    try:
        encoded = json.dumps(scope.get("result"), allow_nan=False, default=_not_json)
    except (TypeError, ValueError) as exc:
        return _error("ResultNotSerializable", f"result is not JSON-compatible: {exc}", None, started,
                      retryable=False)
    limit = int(req.get("max_result_bytes") or 0)
    if limit and len(encoded) > limit:  # ASCII-only JSON: characters are bytes
        return _error("ResultTooLarge", f"result is {len(encoded)} bytes of JSON, larger than the "
                      f"{limit}-byte message limit", None, started, retryable=False)
    return f'{{"ok": true, "duration_ms": {duration}, "result": {encoded}}}'


def _source(req: Mapping[str, Any], filename: str) -> str:
    if req.get("code") is not None:
        return str(req["code"])
    with open(filename, encoding="utf-8") as fh:
        return fh.read()


def _not_json(value: Any) -> Any:
    raise TypeError(f"value of type {type(value).__name__}")


def _exception(exc: BaseException, filename: str, started: float) -> str:
    exc.__traceback__ = _user_frames(exc.__traceback__, filename)
    lines = "".join(traceback.format_exception(exc)).rstrip("\n").split("\n")
    message = traceback.format_exception_only(exc)[-1].strip()
    return _error(type(exc).__name__, message, lines, started)


def _user_frames(tb: TracebackType | None, filename: str) -> TracebackType | None:
    """Drop the bootstrap's frames: the traceback starts at the first frame of the user's file."""
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return tb


def _error(kind: str, message: str, tb: list[str] | None, started: float, *, retryable: bool = True) -> str:
    return error_record(kind, message, tb, duration_ms=_ms(started), retryable=retryable)


def error_record(kind: str, message: str, tb: list[str] | None = None, *, duration_ms: float = 0.0,
                 retryable: bool = True) -> str:
    return json.dumps({"ok": False, "duration_ms": duration_ms, "error": {
        "type": kind, "message": message, "traceback": tb, "retryable": retryable}})


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
