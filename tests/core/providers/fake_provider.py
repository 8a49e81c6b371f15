"""A deliberately plain NDJSON provider (no SDK) whose misbehaviour is chosen by argv[1].

Modes: ok, crash_on_start, hang_on_start, garbage_on_call, ignore_cancel.
Methods: test/echo (returns params), test/sleep {seconds}, test/fail {retryable},
test/crash (exits 3 mid-request), test/pid (returns os.getpid()).
"""

import json
import os
import sys
import threading
import time

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
out_lock = threading.Lock()


def send(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


if mode == "crash_on_start":
    print("fake provider: cannot load model weights", file=sys.stderr, flush=True)
    sys.exit(4)

cancelled = set()


def handle(msg):
    mid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        if mode == "hang_on_start":
            time.sleep(3600)
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": "1", "provider": {"name": "fake", "version": "0"}, "protocols": ["test/v1"],
            "capabilities": {"concurrency": {"maxInFlight": 4}},
            "methods": [{"name": n, "paramsSchema": {"type": "object"}} for n in
                        ("test/echo", "test/sleep", "test/fail", "test/crash", "test/pid")]}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    elif method == "shutdown":
        send({"jsonrpc": "2.0", "id": mid, "result": None})
    elif method == "$/cancelRequest":
        cancelled.add(params.get("id"))
    elif method == "test/echo":
        params.pop("_meta", None)
        send({"jsonrpc": "2.0", "id": mid, "result": params})
    elif method == "test/pid":
        send({"jsonrpc": "2.0", "id": mid, "result": os.getpid()})
    elif method == "test/sleep":
        if mode == "garbage_on_call":
            with out_lock:
                sys.stdout.write("this is not json\n")
                sys.stdout.flush()
            return
        deadline = time.time() + float(params.get("seconds", 1))
        while time.time() < deadline:
            if mid in cancelled and mode != "ignore_cancel":
                send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32800, "message": "cancelled"}})
                return
            time.sleep(0.01)
        send({"jsonrpc": "2.0", "id": mid, "result": {"slept": params.get("seconds")}})
    elif method == "test/fail":
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32803, "message": "boom", "data": {
            "type": "ValueError", "message": "ValueError: boom", "retryable": bool(params.get("retryable", True))}}})
    elif method == "test/crash":
        print("fake provider: segfault imminent", file=sys.stderr, flush=True)
        os._exit(3)
    elif "id" in msg:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})


for line in sys.stdin:
    if not line.strip():
        continue
    threading.Thread(target=handle, args=(json.loads(line),), daemon=True).start()
