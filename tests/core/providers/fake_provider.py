"""A deliberately plain NDJSON provider (no SDK) whose misbehaviour is chosen by argv[1].

Modes: ok, crash_on_start, hang_on_start, garbage_on_call, ignore_cancel.
Methods: test/echo (returns params), test/sleep {seconds}, test/fail {retryable},
test/crash {log} (appends to the file log, then exits 3 mid-request), test/pid (returns os.getpid()),
test/hostile {answer}: a legal-JSON answer no Python receiver should trust
(deep, bigint, nan, inf, null_id), test/quick (defaultTimeoutSec 1 s; sleeps {seconds}).
The provider announces maxMessageBytes 4096 and, as the spec requires, answers a
longer line with -32600 and id null.
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
LIMIT = 4096
HOSTILE = {
    "deep": '{"jsonrpc": "2.0", "id": ID, "result": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "deep200": '{"jsonrpc": "2.0", "id": ID, "result": ' + "[" * 200 + "]" * 200 + "}",
    "bigint": '{"jsonrpc": "2.0", "id": ID, "result": {"n": ' + "9" * 5000 + "}}",
    "nan": '{"jsonrpc": "2.0", "id": ID, "result": {"x": NaN}}',
    "inf": '{"jsonrpc": "2.0", "id": ID, "result": {"x": 1e999}}',
    "null_id": '{"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "invalid request"}}',
}


def handle(msg):
    mid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        if mode == "hang_on_start":
            time.sleep(3600)
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": "1", "provider": {"name": "fake", "version": "0"}, "protocols": ["test/v1"],
            "capabilities": {"concurrency": {"maxInFlight": 4}}, "limits": {"maxMessageBytes": LIMIT},
            "methods": [{"name": n, "paramsSchema": {"type": "object"}} for n in
                        ("test/echo", "test/sleep", "test/fail", "test/crash", "test/pid", "test/hostile")]
                       + [{"name": "test/quick", "paramsSchema": {"type": "object"}, "defaultTimeoutSec": 1}]}})
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
    elif method == "test/hostile":
        with out_lock:
            sys.stdout.write(HOSTILE[params["answer"]].replace("ID", json.dumps(mid)) + "\n")
            sys.stdout.flush()
    elif method in ("test/sleep", "test/quick"):
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
        if params.get("log"):  # a side effect, to count how often the request really ran
            with open(params["log"], "a") as fh:
                fh.write("ran\n")
        print("fake provider: segfault imminent", file=sys.stderr, flush=True)
        os._exit(3)
    elif "id" in msg:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})


for line in sys.stdin:
    if not line.strip():
        continue
    if len(line.rstrip("\n").encode()) > LIMIT:
        send({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "line too long",
                                                      "data": {"maxMessageBytes": LIMIT}}})
        continue
    threading.Thread(target=handle, args=(json.loads(line),), daemon=True).start()
