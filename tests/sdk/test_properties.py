"""Property-based: nothing a peer sends may crash a provider built on the SDK, or the host's
connection (PROTOCOL.md §4 "Robustness"). Random JSON values, random bytes and random
framing go in; each side must stay up, answer per spec, and never leave a request waiting."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections import Counter
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from gleitzeit_core.providers.connection import ClientConnection, ConnectionClosed, ResponseRejected
from gleitzeit_sdk import Provider, RequestContext
from gleitzeit_sdk.errors import RpcError
from gleitzeit_sdk.schemas import ProtocolSchemas
from gleitzeit_sdk.testing import WireClient, connect, id_key, memory_pipe

# Hypothesis caches under ./.hypothesis by default: keep the work tree clean.
_HOME = tempfile.mkdtemp(prefix="gz-hypothesis-")
set_hypothesis_home_dir(_HOME)
atexit.register(shutil.rmtree, _HOME, True)
SETTINGS = settings(max_examples=60, deadline=None, database=None,  # nothing written to the work tree
                    suppress_health_check=[HealthCheck.too_slow])
SCHEMAS = ProtocolSchemas()

# Any code point, lone surrogates included; integers far past 64 bits; NaN and infinities.
scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**80), max_value=10**80)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(st.characters(blacklist_categories=()), max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
KEYS = ("jsonrpc", "id", "method", "params", "result", "error")
messages = st.dictionaries(st.sampled_from(KEYS), values | st.sampled_from(["2.0", "ping", "initialize", "demo/echo"]),
                           max_size=6)


def lenient(value: Any) -> bytes:
    """Any value as one line of (possibly non-standard) JSON: NaN, escaped surrogates."""
    return json.dumps(value, allow_nan=True, ensure_ascii=True).encode()


lines = (messages.map(lenient) | values.map(lenient)
         | st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" "))
         | st.sampled_from([b"[" * 5000, b"9" * 5000, b"\xef\xbb\xbf{}", b'{"id": "\\ud800"}', b"NaN"]))

provider = Provider(name="prop", version="0", max_in_flight=2)


@provider.method("prop/echo")
async def echo(ctx: RequestContext, value: Any = None) -> Any:
    return value


def _id_of(line: bytes) -> Any:
    """The string or integer id a line carries, if it is a JSON object with one (None otherwise)."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    found = obj.get("id") if isinstance(obj, dict) else None
    return found if isinstance(found, (int, str)) and not isinstance(found, bool) else None


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]


@SETTINGS
@given(st.lists(lines, min_size=1, max_size=6), st.lists(st.integers(min_value=0), max_size=8), st.booleans())
def test_the_sdk_server_survives_any_input_and_answers_per_spec(sent: list[bytes], cuts: list[int], handshake: bool):
    async def main() -> None:
        async with connect(provider) as client:
            if handshake:
                await client.handshake()
            for piece in chunked(b"\n".join(sent) + b"\n", cuts):  # random framing: lines split anywhere
                await client.send_raw(piece)
            resp = await client.request("ping", id="still-alive", timeout=5)
            assert resp.get("result") == {}, resp
            allowed = Counter(id_key(i) for i in map(_id_of, sent) if i is not None)
            allowed.update(client.requests.keys())  # the handshake and the ping
            answered: Counter = Counter()
            for msg in client.log:
                if "method" in msg:
                    continue
                problems = SCHEMAS.check_outgoing(msg)
                assert not problems, (msg, problems)
                if msg.get("id") is not None:
                    key = id_key(msg["id"])
                    answered[key] += 1
                    assert answered[key] <= allowed[key], f"more responses than requests for {msg['id']!r}"

    anyio.run(main)


@SETTINGS
@given(st.lists(lines, max_size=6), st.lists(st.integers(min_value=0), max_size=8), st.booleans())
def test_the_hosts_connection_survives_any_input_and_never_leaves_a_request_waiting(
        sent: list[bytes], cuts: list[int], answer: bool):
    async def main() -> None:
        to_host, host_in = memory_pipe()
        host_out, from_host = memory_pipe()
        conn = ClientConnection(host_in, host_out)
        provider_side = WireClient(to_host, from_host)
        outcome: list[Any] = []

        async def caller() -> None:
            try:
                outcome.append(("result", await conn.call("prop/echo", {"value": 1})))
            except (RpcError, ResponseRejected, ConnectionClosed) as exc:
                outcome.append((type(exc).__name__, exc))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(conn.run)
                tg.start_soon(caller)
                request = await provider_side.receive()
                for piece in chunked(b"\n".join(sent) + b"\n", cuts) if sent else []:
                    await provider_side.send_raw(piece)
                if answer:
                    await provider_side.send_raw(lenient({"jsonrpc": "2.0", "id": request["id"], "result": 7}) + b"\n")
                await to_host.aclose()  # EOF: whatever happened, the call must end now
        assert len(outcome) == 1  # the call ended, with one of the documented outcomes
        kind, value = outcome[0]
        if kind == "result":
            assert value is not None or answer or sent  # only a response can produce a result

    anyio.run(main)
