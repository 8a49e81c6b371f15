"""The conformance cases, each an ``async def (target) -> detail`` that raises Failed or Skipped.

Cases talk to the provider executable only through the wire (``testing.spawn``),
so they hold for a provider in any language. Checks that need a slow or a
fast task call take it from the samples; without one they are skipped.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from jsonschema import Draft202012Validator, SchemaError

from gleitzeit_sdk import codes
from gleitzeit_sdk.errors import ProtocolViolation
from gleitzeit_sdk.schemas import ProtocolSchemas
from gleitzeit_sdk.testing import ProviderProcess, WireClient, id_key, initialize_params, spawn

RESPONSE_TIMEOUT = 5.0  # any answer
PING_DEADLINE = 1.0  # "promptly"
EXIT_DEADLINE = 2.0  # the host sends SIGTERM 2 s after closing stdin
CANCEL_GRACE = 5.0  # the host's default cancel grace
QUIET = 0.5  # how long "no answer" is watched
CLEANUP_GRACE = 0.5  # stopping the checker's own processes
SLOW_CALL_LIMIT = 60.0  # a slow sample run to completion
PROBE_METHOD = "conformance/no-such-method"
METHOD_NAME = re.compile(r"^[a-z][a-z0-9_-]*/[A-Za-z0-9_./-]+$")


class Failed(Exception):
    pass


class Skipped(Exception):
    pass


@dataclass(frozen=True)
class Sample:
    method: str
    params: dict[str, Any]


def parse_samples(raw: Mapping[str, Any] | None) -> dict[str, Sample]:
    """``{"slow": {"method", "params"}, "fast": {...}}`` -> Samples; raises ValueError naming the problem."""
    samples: dict[str, Sample] = {}
    for kind, spec in (raw or {}).items():
        if kind not in ("slow", "fast"):
            raise ValueError(f"conformance sample {kind!r}: unknown kind (expected slow or fast)")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("method"), str):
            raise ValueError(f"conformance sample {kind!r}: needs a 'method' string")
        params = spec.get("params", {})
        if not isinstance(params, Mapping):
            raise ValueError(f"conformance sample {kind!r}: 'params' must be a mapping")
        samples[kind] = Sample(spec["method"], dict(params))
    return samples


def short(obj: Any, limit: int = 160) -> str:
    text = json.dumps(obj, ensure_ascii=False) if not isinstance(obj, str) else obj
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Target:
    """One checker run against one executable: its processes, their traffic, the handshake result."""

    def __init__(
        self, argv: list[str], env: Mapping[str, str] | None, cwd: str | None, samples: Mapping[str, Sample]
    ):
        self.argv, self.env, self.cwd, self.samples = argv, env, cwd, samples
        self.schemas = ProtocolSchemas()
        self.violations: list[str] = []
        self.clients: list[WireClient] = []
        self.init_result: dict[str, Any] | None = None
        self._main: ProviderProcess | None = None
        self._main_stack = AsyncExitStack()

    def _violation(self, exc: ProtocolViolation) -> None:
        self.violations.append(f"{exc}: {exc.prefix!r}")

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[ProviderProcess]:
        """A new process of the provider, not yet initialized."""
        async with spawn(
            self.argv, env=self.env, cwd=self.cwd, stop_grace=CLEANUP_GRACE, on_violation=self._violation
        ) as proc:
            self.clients.append(proc.client)
            yield proc

    async def main(self) -> WireClient:
        """The shared, initialized session; respawned if the provider died in an earlier case."""
        if self._main is None or self._main.client.dead or self._main.process.returncode is not None:
            await self._main_stack.aclose()
            self._main = await self._main_stack.enter_async_context(self.fresh())
            try:
                self.init_result = await self._main.client.handshake(timeout=RESPONSE_TIMEOUT)
            except (TimeoutError, anyio.EndOfStream, RuntimeError, ProtocolViolation) as exc:
                self._main = None
                raise Failed(f"cannot initialize the provider: {str(exc) or type(exc).__name__}") from None
        return self._main.client

    async def aclose(self) -> None:
        await self._main_stack.aclose()

    def sample(self, kind: str) -> Sample:
        if kind not in self.samples:
            raise Skipped(f"needs a '{kind}' sample call (conformance: {kind}: {{method, params}})")
        return self.samples[kind]

    @property
    def methods(self) -> list[dict[str, Any]]:
        return list((self.init_result or {}).get("methods") or [])

    @property
    def max_in_flight(self) -> int:
        return int((self.init_result or {}).get("capabilities", {}).get("concurrency", {}).get("maxInFlight", 1))

    @property
    def max_message_bytes(self) -> int:
        """The provider's announced limit: no case sends a longer line, except to test the limit."""
        value = (self.init_result or {}).get("limits", {}).get("maxMessageBytes", codes.DEFAULT_MAX_MESSAGE_BYTES)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1024 else 1024

    def capability(self, name: str) -> bool:
        return bool((self.init_result or {}).get("capabilities", {}).get(name))

    def method_descriptor(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.methods if m.get("name") == name), None)


# -- helpers ----------------------------------------------------------------


def expect_error(resp: dict[str, Any], code: int, what: str) -> dict[str, Any]:
    error = resp.get("error")
    if not isinstance(error, dict) or error.get("code") != code:
        raise Failed(f"{what}: expected error {code}, got {short(resp)}")
    return error


def expect_result(resp: dict[str, Any], what: str) -> Any:
    if "result" not in resp:
        raise Failed(f"{what}: expected a result, got {short(resp)}")
    return resp["result"]


async def call(client: WireClient, method: str, params: Any = None, *, id: Any = None, timeout: float = RESPONSE_TIMEOUT) -> dict[str, Any]:
    try:
        return await client.request(method, params, id=id, timeout=timeout)
    except TimeoutError:
        raise Failed(f"{method}: no response within {timeout:g} s") from None
    except anyio.EndOfStream:
        raise Failed(f"{method}: the provider closed stdout (exited?)") from None


async def next_response(client: WireClient, what: str, timeout: float = RESPONSE_TIMEOUT) -> dict[str, Any]:
    try:
        with anyio.fail_after(timeout):
            while "method" in (msg := await client.receive(timeout)):
                pass
    except TimeoutError:
        raise Failed(f"{what}: no response within {timeout:g} s") from None
    except anyio.EndOfStream:
        raise Failed(f"{what}: the provider closed stdout (exited?)") from None
    return msg


async def still_alive(client: WireClient, after: str) -> None:
    resp = await call(client, "ping", timeout=RESPONSE_TIMEOUT)
    if resp.get("result") != {}:
        raise Failed(f"ping after {after} got {short(resp)}")


async def start(client: WireClient, sample: Sample, token: Any = None) -> Any:
    """Send a sample request without waiting; returns its id."""
    id = client.next_id()
    params = dict(sample.params)
    if token is not None:
        params["_meta"] = {"progressToken": token}
    await client.send({"jsonrpc": "2.0", "id": id, "method": sample.method, "params": params})
    return id


async def cancel_all(client: WireClient, ids: list[Any]) -> list[dict[str, Any]]:
    for id in ids:
        await client.notify("$/cancelRequest", {"id": id})
    responses = []
    for id in ids:
        try:
            responses.append(await client.response_to(id, CANCEL_GRACE))
        except TimeoutError:
            raise Failed(f"no final response for cancelled request {id} within {CANCEL_GRACE:g} s") from None
    return responses


def token_traffic(client: WireClient, token: Any) -> list[tuple[int, dict[str, Any]]]:
    return [
        (i, m)
        for i, m in enumerate(client.log)
        if m.get("method") in ("$/progress", "$/output") and id_key((m.get("params") or {}).get("token")) == id_key(token)
    ]


def index_of(client: WireClient, msg: dict[str, Any]) -> int:
    return next(i for i, m in enumerate(client.log) if m is msg)


# -- handshake --------------------------------------------------------------


async def silent_before_initialize(t: Target) -> str:
    """Nothing on stdout before the initialize response."""
    async with t.fresh() as proc:
        before = len(t.violations)
        await proc.client.quiet_for(QUIET)
        await call(proc.client, "initialize", initialize_params(), id="first")
        if len(t.violations) > before:
            raise Failed(f"wrote before initialize: {t.violations[before]}")
        if proc.client.log[0].get("id") != "first":
            raise Failed(f"wrote before initialize: {short(proc.client.log[0])}")
    return "the initialize response was the first line"


async def initialize_answered(t: Target) -> str:
    await t.main()
    assert t.init_result is not None
    provider = t.init_result.get("provider") or {}
    return f"{provider.get('name')} {provider.get('version')}: {len(t.methods)} methods, maxInFlight {t.max_in_flight}"


async def initialize_result_schema(t: Target) -> str:
    await t.main()
    errors = t.schemas.errors("initialize-result.json", t.init_result)
    if errors:
        raise Failed("; ".join(errors[:3]))
    return "matches initialize-result.json"


async def method_descriptors(t: Target) -> str:
    """Names are <protocol>/<action>, unique, not $/; schemas are valid 2020-12."""
    await t.main()
    if not t.methods:
        raise Failed("advertises no methods")
    problems, seen = [], set()
    for m in t.methods:
        name = m.get("name")
        if not isinstance(name, str) or not METHOD_NAME.match(name) or name.startswith("$/"):
            problems.append(f"bad method name {name!r}")
        elif name in seen:
            problems.append(f"duplicate method {name!r}")
        seen.add(name)
        for key in ("paramsSchema", "resultSchema"):
            if key in m:
                try:
                    Draft202012Validator.check_schema(m[key])
                except SchemaError as exc:
                    problems.append(f"{name} {key}: {exc.message}")
    if problems:
        raise Failed("; ".join(problems[:3]))
    return ", ".join(sorted(seen))


async def version_mismatch(t: Target) -> str:
    async with t.fresh() as proc:
        resp = await call(proc.client, "initialize", initialize_params(protocolVersion="999"))
        error = expect_error(resp, codes.INVALID_PARAMS, "initialize with protocolVersion 999")
        data = error.get("data")
        if not (isinstance(data, dict) and isinstance(data.get("supported"), list) and "1" in data["supported"]):
            raise Failed(f"error data must list the supported versions: {short(error)}")
        await still_alive(proc.client, "the refused initialize")
    return f"-32602, supported {data['supported']}"


async def ping_before_initialize(t: Target) -> str:
    async with t.fresh() as proc:
        expect_result(await call(proc.client, "ping", timeout=RESPONSE_TIMEOUT), "ping before initialize")
    return "answered"


async def request_before_initialize(t: Target) -> str:
    async with t.fresh() as proc:
        expect_error(await call(proc.client, PROBE_METHOD, {}), codes.NOT_INITIALIZED, "request before initialize")
        await still_alive(proc.client, "a request before initialize")
    return "-32002"


async def request_before_initialized(t: Target) -> str:
    async with t.fresh() as proc:
        expect_result(await call(proc.client, "initialize", initialize_params()), "initialize")
        expect_error(await call(proc.client, PROBE_METHOD, {}), codes.NOT_INITIALIZED, "request before initialized")
    return "-32002"


async def second_initialize(t: Target) -> str:
    client = await t.main()
    expect_error(await call(client, "initialize", initialize_params()), codes.INVALID_REQUEST, "second initialize")
    return "-32600"


# -- basic requests -----------------------------------------------------------


async def ping_answered(t: Target) -> str:
    client = await t.main()
    resp = await call(client, "ping", timeout=PING_DEADLINE)
    if resp.get("result") != {}:
        raise Failed(f"expected result {{}}, got {short(resp)}")
    return f"{{}} within {PING_DEADLINE:g} s"


async def health_answered(t: Target) -> str:
    client = await t.main()
    result = expect_result(await call(client, "health"), "health")
    errors = t.schemas.errors("health-result.json", result)
    if errors:
        raise Failed("; ".join(errors[:3]))
    return short(result, 80)


async def fast_sample_succeeds(t: Target) -> str:
    sample = t.sample("fast")
    client = await t.main()
    result = expect_result(await call(client, sample.method, sample.params), sample.method)
    return short(result, 80)


async def unknown_method(t: Target) -> str:
    client = await t.main()
    resp = await call(client, PROBE_METHOD, {}, id="unknown-method")
    expect_error(resp, codes.METHOD_NOT_FOUND, PROBE_METHOD)
    return "-32601, id echoed"


async def unknown_dollar_request(t: Target) -> str:
    client = await t.main()
    expect_error(await call(client, "$/conformance/probe", {}), codes.METHOD_NOT_FOUND, "$/conformance/probe request")
    return "-32601"


_WRONG = {"string": 12345, "integer": "x", "number": "x", "boolean": "x", "object": "x", "array": "x"}


def _invalid_params_for(descriptor: dict[str, Any], kind: str) -> tuple[dict[str, Any], str] | None:
    """Params that break the method's schema in the way ``kind`` names (missing, unknown,
    wrong_type), and the parameter a good message names; None if the schema allows no such break."""
    schema = descriptor.get("paramsSchema")
    if not isinstance(schema, dict):
        return None
    props = schema.get("properties") or {}
    required = [r for r in schema.get("required") or [] if isinstance(r, str)]
    base = {}  # the other required params, well-typed where the schema says how
    for name in required:
        prop = props.get(name) if isinstance(props.get(name), dict) else {}
        base[name] = {"string": "x", "integer": 1, "number": 1, "boolean": True, "object": {}, "array": []}.get(
            prop.get("type") if isinstance(prop.get("type"), str) else "", "x")
    candidates: list[tuple[dict[str, Any], str]] = []
    if kind == "missing" and required:
        candidates.append(({k: v for k, v in base.items() if k != required[0]}, required[0]))
    if kind == "unknown" and schema.get("additionalProperties") is False:
        candidates.append(({**base, "conformance_bogus": 1}, "conformance_bogus"))
    if kind == "wrong_type":
        for name, prop in props.items():
            if isinstance(prop, dict) and isinstance(prop.get("type"), str) and prop["type"] in _WRONG:
                candidates.append(({**base, name: _WRONG[prop["type"]]}, name))
    validator = Draft202012Validator(schema)
    return next(((p, n) for p, n in candidates if not validator.is_valid(p)), None)


async def _invalid_params(t: Target, kind: str) -> str:
    """Params breaking the paramsSchema -> -32602 with a message naming the parameter."""
    client = await t.main()
    for descriptor in t.methods:
        found = _invalid_params_for(descriptor, kind)
        if found is None:
            continue
        params, name = found
        error = expect_error(await call(client, descriptor["name"], params), codes.INVALID_PARAMS, f"{descriptor['name']} {short(params)}")
        if name not in error.get("message", "") + json.dumps(error.get("data")):
            raise Failed(f"the -32602 message does not name {name!r}: {short(error)}")
        return f"{descriptor['name']} {short(params, 60)} -> -32602 naming {name!r}"
    raise Skipped(f"no advertised paramsSchema allows a {kind.replace('_', ' ')} parameter")


async def invalid_params_wrong_type(t: Target) -> str:
    return await _invalid_params(t, "wrong_type")


async def invalid_params_missing(t: Target) -> str:
    return await _invalid_params(t, "missing")


async def invalid_params_unknown(t: Target) -> str:
    return await _invalid_params(t, "unknown")


async def params_not_object(t: Target) -> str:
    client = await t.main()
    method = t.samples["fast"].method if "fast" in t.samples else (t.methods[0]["name"] if t.methods else None)
    if method is None:
        raise Skipped("no task method")
    expect_error(await call(client, method, [1, 2]), codes.INVALID_PARAMS, f"{method} with array params")
    return f"{method} [1, 2] -> -32602"


# -- framing and JSON-RPC edge cases -------------------------------------------


async def _raw_error(t: Target, line: bytes, code: int, what: str, *, ids: tuple[Any, ...] = (None,)) -> str:
    client = await t.main()
    for id in ids:
        if id is not None:
            client.requests[id_key(id)] = "(invalid request)"
    await client.send_raw(line + b"\n")
    resp = await next_response(client, what)
    expect_error(resp, code, what)
    if not any(id_key(resp.get("id")) == id_key(i) for i in ids):
        raise Failed(f"{what}: answered with id {short(resp.get('id'))}, expected {' or '.join(short(i) for i in ids)}")
    await still_alive(client, what)
    return f"{code}, id {short(resp.get('id'))}"


async def parse_error(t: Target) -> str:
    return await _raw_error(t, b'{"jsonrpc": "2.0", "id": 1, "method": "pi', codes.PARSE_ERROR, "truncated JSON")


async def invalid_utf8(t: Target) -> str:
    return await _raw_error(t, b'{"jsonrpc": "2.0", "id": 1, "method": "\xff\xfe"}', codes.PARSE_ERROR, "invalid UTF-8")


async def invalid_request_version(t: Target) -> str:
    line = b'{"jsonrpc": "1.0", "id": "bad-version", "method": "ping"}'
    return await _raw_error(t, line, codes.INVALID_REQUEST, 'jsonrpc "1.0"', ids=("bad-version", None))


async def invalid_request_no_method(t: Target) -> str:
    line = b'{"jsonrpc": "2.0", "id": "no-method"}'
    return await _raw_error(t, line, codes.INVALID_REQUEST, "no method", ids=("no-method", None))


async def invalid_request_method_type(t: Target) -> str:
    line = b'{"jsonrpc": "2.0", "id": "numeric-method", "method": 42}'
    return await _raw_error(t, line, codes.INVALID_REQUEST, "numeric method", ids=("numeric-method", None))


async def invalid_request_object_id(t: Target) -> str:
    line = b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}'
    return await _raw_error(t, line, codes.INVALID_REQUEST, "object id")


async def invalid_request_scalar_params(t: Target) -> str:
    line = b'{"jsonrpc": "2.0", "id": "scalar-params", "method": "ping", "params": 5}'
    return await _raw_error(t, line, codes.INVALID_REQUEST, "scalar params", ids=("scalar-params", None))


async def batch_rejected(t: Target) -> str:
    client = await t.main()
    before = len(t.violations)
    await client.send([{"jsonrpc": "2.0", "id": "in-batch", "method": "ping"}])
    try:
        resp = await next_response(client, "batch", timeout=PING_DEADLINE)
    except Failed:
        if len(t.violations) > before:
            raise Failed(f"answered the batch with a non-object: {t.violations[-1]}") from None
        raise
    expect_error(resp, codes.INVALID_REQUEST, "batch")
    if resp.get("id") is not None:
        raise Failed(f"batch error must have id null: {short(resp)}")
    late = [m for m in await client.quiet_for(QUIET / 2) if m.get("id") == "in-batch"]
    if late:
        raise Failed(f"executed the request inside the batch: {short(late[0])}")
    return "one -32600, id null"


async def blank_lines_ignored(t: Target) -> str:
    client = await t.main()
    await client.send_raw(b"\n   \n\t\r\n")
    id = client.next_id()
    await client.send({"jsonrpc": "2.0", "id": id, "method": "ping"})
    resp = await next_response(client, "ping after blank lines")
    if resp.get("id") != id:
        raise Failed(f"answered a blank line: {short(resp)}")
    return "ignored"


async def ids_int_and_string(t: Target) -> str:
    client = await t.main()
    await client.send({"jsonrpc": "2.0", "id": 7, "method": "ping"})
    await client.send({"jsonrpc": "2.0", "id": "7", "method": "ping"})
    got = [await next_response(client, "ping id 7"), await next_response(client, 'ping id "7"')]
    kinds = sorted(type(r.get("id")).__name__ for r in got)
    if kinds != ["int", "str"]:
        raise Failed(f"ids 7 and \"7\" came back as {short([r.get('id') for r in got])}")
    return '7 and "7" kept apart'


async def ids_large_integer(t: Target) -> str:
    client = await t.main()
    id = 2**53 - 1
    expect_result(await call(client, "ping", id=id), f"ping id {id}")
    return str(id)


async def ids_unicode(t: Target) -> str:
    client = await t.main()
    id = "ид-✓-🚀-\u2028-\"quoted\""
    expect_result(await call(client, "ping", id=id), "ping with a unicode id")
    return short(id)


async def notifications_never_answered(t: Target) -> str:
    client = await t.main()
    for method, params in (
        ("conformance/notify", {"x": 1}),
        ("$/conformance", {}),
        ("initialized", None),
        ("ping", None),
    ):
        await client.notify(method, params)
    got = await client.quiet_for(QUIET)
    if got:
        raise Failed(f"answered a notification: {short(got[0])}")
    await still_alive(client, "notifications")
    return "no output"


# -- spec decisions (PROTOCOL.md §1) --------------------------------------------


async def _refused_raw(t: Target, line: bytes, what: str, codes_ok: tuple[int, ...], *, ids: tuple[Any, ...] = (None,)) -> str:
    """Send a raw line; expect one error with one of ``codes_ok`` and an id from ``ids``; still alive."""
    client = await t.main()
    await client.send_raw(line + b"\n")
    resp = await next_response(client, what)
    error = resp.get("error")
    if not isinstance(error, dict) or error.get("code") not in codes_ok:
        raise Failed(f"{what}: expected error {' or '.join(map(str, codes_ok))}, got {short(resp)}")
    if not any(id_key(resp.get("id")) == id_key(i) for i in ids):
        raise Failed(f"{what}: answered with id {short(resp.get('id'))}, expected {' or '.join(short(i) for i in ids)}")
    await still_alive(client, what)
    return f"{error['code']}, id {short(resp.get('id'))}"


async def null_id_request(t: Target) -> str:
    """`"id": null` in a request is invalid in v1: refused, never executed."""
    return await _refused_raw(t, b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', "request with id null",
                              (codes.INVALID_REQUEST,))


async def float_id(t: Target) -> str:
    """`1.0` is refused or read as the integer 1 (a JavaScript decoder cannot tell them apart)."""
    client = await t.main()
    client.requests[id_key(1)] = "ping"
    await client.send_raw(b'{"jsonrpc": "2.0", "id": 1.0, "method": "ping"}\n')
    resp = await next_response(client, "id 1.0")
    error = resp.get("error")
    if isinstance(error, dict) and error.get("code") == codes.INVALID_REQUEST and resp.get("id") is None:
        await still_alive(client, "id 1.0")
        return "-32600, id null"
    if resp.get("result") == {} and resp.get("id") == 1 and not isinstance(resp.get("id"), bool):
        return "read as the integer 1"
    raise Failed(f"id 1.0: expected -32600 with id null, or the ping's result with id 1, got {short(resp)}")


async def fractional_id(t: Target) -> str:
    return await _refused_raw(t, b'{"jsonrpc": "2.0", "id": 1.5, "method": "ping"}', "id 1.5", (codes.INVALID_REQUEST,))


async def boolean_id(t: Target) -> str:
    return await _refused_raw(t, b'{"jsonrpc": "2.0", "id": true, "method": "ping"}', "id true", (codes.INVALID_REQUEST,))


async def byte_order_mark(t: Target) -> str:
    return await _refused_raw(t, b'\xef\xbb\xbf{"jsonrpc": "2.0", "id": "bom", "method": "ping"}', "a line starting with a BOM",
                              (codes.PARSE_ERROR,))


async def empty_method(t: Target) -> str:
    client = await t.main()
    expect_error(await call(client, "", {}, id="empty-method"), codes.METHOD_NOT_FOUND, 'method ""')
    return "-32601, id echoed"


async def crlf_line_end(t: Target) -> str:
    client = await t.main()
    await client.send_raw(b'{"jsonrpc": "2.0", "id": "crlf", "method": "ping"}\r\n')
    client.requests[id_key("crlf")] = "ping"
    resp = await next_response(client, "ping ending in \\r\\n")
    if resp.get("id") != "crlf" or resp.get("result") != {}:
        raise Failed(f"ping ending in \\r\\n: {short(resp)}")
    return "answered"


async def response_from_host_ignored(t: Target) -> str:
    client = await t.main()
    await client.send({"jsonrpc": "2.0", "id": "not-a-request", "result": {}})
    await client.send({"jsonrpc": "2.0", "id": "not-a-request-2", "error": {"code": -32603, "message": "x"}})
    got = await client.quiet_for(QUIET)
    if got:
        raise Failed(f"answered a response-shaped message: {short(got[0])}")
    await still_alive(client, "response-shaped messages")
    return "no output"


# -- value limits ---------------------------------------------------------------


async def _hostile_value(t: Target, value: bytes, what: str, *, require_error: bool) -> str:
    """A ping whose params hold ``value``: the provider answers (a refusal, or a result where
    tolerated), keeps the id when it answers with it, and stays up."""
    client = await t.main()
    id = f"value-{client.next_id()}"
    client.requests[id_key(id)] = "ping"
    await client.send_raw(b'{"jsonrpc": "2.0", "id": "' + id.encode() + b'", "method": "ping", "params": {"v": ' + value + b"}}\n")
    resp = await next_response(client, what)
    error = resp.get("error")
    refused = isinstance(error, dict) and error.get("code") in (codes.INVALID_REQUEST, codes.PARSE_ERROR)
    if require_error and not refused:
        raise Failed(f"{what}: expected -32600 or -32700, got {short(resp)}")
    if not refused and resp.get("id") != id:
        raise Failed(f"{what}: expected a refusal or the ping's result, got {short(resp)}")
    await still_alive(client, what)
    return f"refused with {error['code']}" if refused else "answered (tolerated)"


async def deep_nesting(t: Target) -> str:
    await t.main()
    depth = min(100_000, (t.max_message_bytes - 200) // 2)
    return await _hostile_value(t, b"[" * depth + b"]" * depth, f"params nested {depth} deep", require_error=False)


async def huge_integer(t: Target) -> str:
    await t.main()
    digits = min(5000, t.max_message_bytes - 200)
    return await _hostile_value(t, b"9" * digits, f"a {digits}-digit integer", require_error=False)


async def nan_literal(t: Target) -> str:
    return await _hostile_value(t, b"NaN", "NaN (not JSON)", require_error=True)


async def lone_surrogate(t: Target) -> str:
    return await _hostile_value(t, b'"a\\ud800b"', "a string with a lone surrogate", require_error=False)


async def lone_surrogate_id(t: Target) -> str:
    client = await t.main()
    await client.send_raw(b'{"jsonrpc": "2.0", "id": "\\ud800", "method": "ping"}\n')
    client.requests[id_key("\ud800")] = "ping"
    resp = await next_response(client, "id with a lone surrogate")
    if "result" in resp and resp.get("id") != "\ud800":
        raise Failed(f"answered with another id: {short(resp)}")
    await still_alive(client, "an id with a lone surrogate")
    return "echoed" if "result" in resp else f"refused with {resp.get('error', {}).get('code')}"


# -- size boundaries --------------------------------------------------------------


def _ping_of_size(id: str, size: int) -> bytes:
    head = b'{"jsonrpc": "2.0", "id": "' + id.encode() + b'", "method": "ping", "params": {"pad": "'
    tail = b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def exactly_the_limit(t: Target) -> str:
    """A line of exactly maxMessageBytes (the newline not counted) is accepted."""
    client = await t.main()
    limit = t.max_message_bytes
    client.requests[id_key("at-limit")] = "ping"
    await client.send_raw(_ping_of_size("at-limit", limit) + b"\n")
    resp = await next_response(client, f"a {limit}-byte line", timeout=RESPONSE_TIMEOUT * 2)
    if resp.get("id") != "at-limit" or "result" not in resp:
        raise Failed(f"a line of exactly maxMessageBytes ({limit}) was not answered: {short(resp)}")
    return f"{limit} bytes answered"


async def one_over_the_limit(t: Target) -> str:
    client = await t.main()
    limit = t.max_message_bytes
    await client.send_raw(_ping_of_size("over-limit", limit + 1) + b"\n")
    resp = await next_response(client, f"a {limit + 1}-byte line", timeout=RESPONSE_TIMEOUT * 2)
    if resp.get("id") == "over-limit":
        raise Failed(f"processed a line one byte over maxMessageBytes ({limit})")
    expect_error(resp, codes.INVALID_REQUEST, f"a {limit + 1}-byte line")
    if resp.get("id") is not None:
        raise Failed(f"the refusal must have id null: {short(resp)}")
    await still_alive(client, "a line one byte over the limit")
    return "-32600, id null"


# -- what the host relies on in the handshake ------------------------------------


async def announced_limits(t: Target) -> str:
    """limits.maxMessageBytes (if given) is an integer >= 1024; maxInFlight an integer >= 1."""
    await t.main()
    result = t.init_result or {}
    limit = (result.get("limits") or {}).get("maxMessageBytes", codes.DEFAULT_MAX_MESSAGE_BYTES)
    mif = (result.get("capabilities") or {}).get("concurrency", {}).get("maxInFlight")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1024:
        raise Failed(f"limits.maxMessageBytes must be an integer >= 1024, got {short(limit)}")
    if not isinstance(mif, int) or isinstance(mif, bool) or mif < 1:
        raise Failed(f"capabilities.concurrency.maxInFlight must be an integer >= 1, got {short(mif)}")
    return f"maxMessageBytes {limit}, maxInFlight {mif}"


async def timeouts_declared(t: Target) -> str:
    """defaultTimeoutSec is a positive number or null; timeoutParam names a declared parameter."""
    await t.main()
    problems = []
    for m in t.methods:
        default = m.get("defaultTimeoutSec")
        if default is not None and (not isinstance(default, (int, float)) or isinstance(default, bool) or default <= 0):
            problems.append(f"{m.get('name')}: defaultTimeoutSec {short(default)}")
        param = m.get("timeoutParam")
        props = (m.get("paramsSchema") or {}).get("properties") or {}
        if param is not None and param not in props:
            problems.append(f"{m.get('name')}: timeoutParam {param!r} is not a parameter")
    if problems:
        raise Failed("; ".join(problems[:3]))
    return ", ".join(f"{m.get('name')}: {m.get('defaultTimeoutSec')}" for m in t.methods)[:160]


async def exit_on_eof_answers_in_flight(t: Target) -> str:
    """On stdin EOF a running request still gets its one final response before the exit."""
    async with t.fresh() as proc:
        await proc.client.handshake(timeout=RESPONSE_TIMEOUT)
        id = await start(proc.client, t.sample("slow"))
        await proc.client.quiet_for(0.2)
        await proc.client.close()
        try:
            resp = await proc.client.response_to(id, EXIT_DEADLINE)
        except (TimeoutError, anyio.EndOfStream):
            raise Failed("no final response for the running request before the exit") from None
        if "result" not in resp:
            expect_error(resp, codes.CANCELLED, "the running request at stdin EOF")
    return "answered " + ("-32800" if "error" in resp else "with the result")


# -- concurrency, cancellation, progress --------------------------------------------


async def ping_while_busy(t: Target) -> str:
    slow = t.sample("slow")
    client = await t.main()
    n = min(t.max_in_flight, 8)
    ids = [await start(client, slow) for _ in range(n)]
    ping_id = client.next_id()
    await client.send({"jsonrpc": "2.0", "id": ping_id, "method": "ping"})
    first = await next_response(client, "ping while busy", timeout=PING_DEADLINE)
    if first.get("id") != ping_id:
        raise Failed(f"a slow call finished before the ping was answered: {short(first)}")
    await cancel_all(client, ids)
    return f"ping answered with {n} slow calls running"


async def overload(t: Target) -> str:
    slow = t.sample("slow")
    if t.max_in_flight > 32:
        raise Skipped(f"maxInFlight {t.max_in_flight} is too many slow calls to fill")
    client = await t.main()
    ids = [await start(client, slow) for _ in range(t.max_in_flight)]
    extra = await start(client, slow)
    resp = await next_response(client, "one call over maxInFlight")
    await cancel_all(client, ids + [extra])
    if resp.get("id") != extra:
        raise Failed(f"expected -32001 for call {t.max_in_flight + 1}, but first came {short(resp)}")
    error = expect_error(resp, codes.OVERLOADED, f"call {t.max_in_flight + 1}")
    if not (isinstance(error.get("data"), dict) and error["data"].get("retryable") is True):
        raise Failed(f"-32001 needs data.retryable true: {short(error)}")
    return f"call {t.max_in_flight + 1} -> -32001 retryable"


async def out_of_order(t: Target) -> str:
    slow, fast = t.sample("slow"), t.sample("fast")
    if t.max_in_flight < 2:
        raise Skipped("maxInFlight is 1")
    client = await t.main()
    slow_id = await start(client, slow)
    fast_id = await start(client, fast)
    first = await next_response(client, "fast call behind a slow one")
    if first.get("id") != fast_id:
        await cancel_all(client, [slow_id])
        raise Failed(f"expected the fast call's response first, got {short(first)}")
    await cancel_all(client, [slow_id])
    return "fast response overtook the slow one"


async def _cancel_running(t: Target) -> tuple[WireClient, Any, str, dict[str, Any], list[dict[str, Any]]]:
    """Start the slow sample with a token, cancel it once it has started; return what followed."""
    slow = t.sample("slow")
    client = await t.main()
    token = f"cancel-{client.next_id()}"
    id = await start(client, slow, token)
    with anyio.move_on_after(QUIET):
        while not token_traffic(client, token):
            await client.receive(QUIET)
    await client.notify("$/cancelRequest", {"id": id})
    try:
        resp = await client.response_to(id, CANCEL_GRACE)
    except TimeoutError:
        raise Failed(f"no final response within {CANCEL_GRACE:g} s of $/cancelRequest") from None
    tail = await client.quiet_for(QUIET)
    return client, id, token, resp, tail


async def cancel_one_response(t: Target) -> str:
    client, id, _, resp, tail = await _cancel_running(t)
    if "result" not in resp:
        expect_error(resp, codes.CANCELLED, "cancelled request")
    again = [m for m in tail if "method" not in m and id_key(m.get("id")) == id_key(id)]
    if again:
        raise Failed(f"a second response for the cancelled request: {short(again[0])}")
    return "one response: " + ("-32800" if "error" in resp else "the result")


async def cancel_nothing_after_response(t: Target) -> str:
    client, _, token, resp, _ = await _cancel_running(t)
    after = [m for i, m in token_traffic(client, token) if i > index_of(client, resp)]
    if after:
        raise Failed(f"{after[0]['method']} after the final response: {short(after[0])}")
    return "no $/progress or $/output after it"


async def cancel_unknown_id(t: Target) -> str:
    client = await t.main()
    await client.notify("$/cancelRequest", {"id": "never-sent"})
    resp = await call(client, "ping", id="after-cancel-unknown")
    await client.notify("$/cancelRequest", {"id": "after-cancel-unknown"})  # already answered
    got = await client.quiet_for(QUIET)
    if got:
        raise Failed(f"output after cancelling an unknown/finished id: {short(got[0])}")
    expect_result(resp, "ping")
    return "ignored"


async def progress_monotonic(t: Target) -> str:
    slow = t.sample("slow")
    if not t.capability("progress"):
        raise Skipped("capabilities.progress is false")
    client = await t.main()
    token = f"progress-{client.next_id()}"
    id = await start(client, slow, token)
    try:
        resp = await client.response_to(id, SLOW_CALL_LIMIT)
    except TimeoutError:
        raise Failed(f"the slow sample did not finish within {SLOW_CALL_LIMIT:g} s") from None
    await client.quiet_for(QUIET / 2)
    traffic = token_traffic(client, token)
    values = [m["params"].get("progress") for _, m in traffic if m["method"] == "$/progress"]
    if not values:
        raise Skipped("the slow sample sent no $/progress (nothing to check)")
    if any(not isinstance(v, (int, float)) for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise Failed(f"progress not strictly increasing: {values}")
    if any(i > index_of(client, resp) for i, _ in traffic):
        raise Failed("$/progress or $/output after the final response")
    return f"{len(values)} increasing values, all before the response"


async def progress_needs_token(t: Target) -> str:
    slow = t.sample("slow")
    client = await t.main()
    start_at = len(client.log)
    id = await start(client, slow)
    await client.quiet_for(QUIET)
    await cancel_all(client, [id])
    sent = [m for m in client.log[start_at:] if m.get("method") in ("$/progress", "$/output")]
    if sent:
        raise Failed(f"sent {sent[0]['method']} for a request without a progressToken")
    return "none without a token"


# -- size and unicode -------------------------------------------------------------


async def large_message(t: Target) -> str:
    """A multi-byte message close to the announced limit (at most ~10 MiB) is answered."""
    client = await t.main()
    unit = "ü✓"  # 5 bytes of UTF-8
    pad = unit * (min(10 * 1024 * 1024, t.max_message_bytes - 200) // len(unit.encode()))
    resp = await call(client, "ping", {"pad": pad}, timeout=RESPONSE_TIMEOUT * 2)
    expect_result(resp, f"a {len(pad.encode())}-byte ping (within maxMessageBytes {t.max_message_bytes})")
    return f"{len(pad.encode())} bytes answered"


async def large_id_roundtrip(t: Target) -> str:
    client = await t.main()
    unit = "ünïcødé ✓ 漢字 🚀 "  # multi-byte characters split across pipe reads
    id = unit * (min(1024 * 1024, (t.max_message_bytes - 200) // 2) // len(unit.encode()))
    expect_result(await call(client, "ping", id=id, timeout=RESPONSE_TIMEOUT * 2), f"ping with a {len(id.encode())}-byte id")
    return f"{len(id.encode())} bytes echoed"


async def oversized_message(t: Target) -> str:
    """A line over maxMessageBytes: refused (-32600, id null) and skipped; the provider goes on."""
    client = await t.main()
    limit = int((t.init_result or {}).get("limits", {}).get("maxMessageBytes", codes.DEFAULT_MAX_MESSAGE_BYTES))
    head = b'{"jsonrpc": "2.0", "id": "oversized", "method": "ping", "params": {"pad": "'
    await client.send_raw(head + b"x" * (limit + 1024 - len(head)) + b'"}}\n')
    resp = await call(client, "ping", id="after-oversized", timeout=RESPONSE_TIMEOUT * 2)
    answered = [m for m in client.log if m.get("id") == "oversized"]
    if answered:
        raise Failed(f"processed a message over its own maxMessageBytes ({limit})")
    expect_result(resp, "ping after an oversized message")
    refusals = [m for m in client.log if "error" in m and m.get("id") is None and m["error"].get("code") == codes.INVALID_REQUEST]
    return "refused with -32600 and went on" if refusals else "dropped silently and went on"


# -- shutdown -----------------------------------------------------------------------


async def shutdown_sequence(t: Target) -> str:
    async with t.fresh() as proc:
        await proc.client.handshake(timeout=RESPONSE_TIMEOUT)
        resp = await call(proc.client, "shutdown")
        if resp.get("result", "missing") is not None:
            raise Failed(f"shutdown must answer null: {short(resp)}")
        expect_error(await call(proc.client, "ping"), codes.INVALID_REQUEST, "request after shutdown")
        await proc.client.close()
        code = await proc.wait_exit(EXIT_DEADLINE)
        if code != 0:
            raise Failed(f"after stdin EOF: {'still running' if code is None else f'exit code {code}'} after {EXIT_DEADLINE:g} s")
    return "null, then -32600, then exit 0"


async def _exit_on_eof(t: Target, busy: bool) -> str:
    async with t.fresh() as proc:
        await proc.client.handshake(timeout=RESPONSE_TIMEOUT)
        if busy:
            await start(proc.client, t.sample("slow"))
            await proc.client.quiet_for(0.2)
        await proc.client.close()
        code = await proc.wait_exit(EXIT_DEADLINE)
        if code is None:
            raise Failed(f"still running {EXIT_DEADLINE:g} s after stdin EOF")
        if code != 0:
            raise Failed(f"exit code {code} on stdin EOF")
    return f"exit 0 within {EXIT_DEADLINE:g} s"


async def exit_on_eof_idle(t: Target) -> str:
    return await _exit_on_eof(t, busy=False)


async def exit_on_eof_busy(t: Target) -> str:
    t.sample("slow")
    return await _exit_on_eof(t, busy=True)


async def sigterm_exits(t: Target) -> str:
    """SIGTERM to the process group (as the host sends it) while idle: all of it gone within 2 s."""
    async with t.fresh() as proc:
        await proc.client.handshake(timeout=RESPONSE_TIMEOUT)
        os.killpg(proc.process.pid, signal.SIGTERM)
        if await proc.wait_exit(EXIT_DEADLINE) is None:
            raise Failed(f"still running {EXIT_DEADLINE:g} s after SIGTERM")
        with anyio.move_on_after(EXIT_DEADLINE):
            while survivors := live_group_members(proc.process.pid):
                await anyio.sleep(0.05)
        if survivors:
            raise Failed(f"processes left in its process group after SIGTERM: pids {survivors}")
        return "exited, nothing left in its process group"


def live_group_members(pgid: int) -> list[int]:
    """Pids in the process group that are not zombies (an init that does not reap leaves those)."""
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    members = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields after "(comm)": state, ppid, pgrp
            members.append(int(entry))
    return members


# -- the whole session's traffic ---------------------------------------------------


async def stdout_only_jsonrpc(t: Target) -> str:
    bad = [m for c in t.clients for m in c.log if m.get("jsonrpc") != "2.0"]
    if t.violations:
        raise Failed(f"{len(t.violations)} non-JSON-RPC lines on stdout, first: {t.violations[0]}")
    if bad:
        raise Failed(f"message without jsonrpc 2.0: {short(bad[0])}")
    return f"{sum(len(c.log) for c in t.clients)} lines, all JSON-RPC"


async def responses_match_schemas(t: Target) -> str:
    problems, count = [], 0
    for client in t.clients:
        for msg in client.log:
            if "method" in msg:
                continue
            count += 1
            method = client.requests.get(id_key(msg.get("id")))
            found = t.schemas.check_outgoing(msg, method)
            descriptor = t.method_descriptor(method) if method else None
            if not found and descriptor and "result" in msg and isinstance(descriptor.get("resultSchema"), (dict, bool)):
                errors = Draft202012Validator(descriptor["resultSchema"]).iter_errors(msg["result"])
                found = [f"{method} resultSchema: {e.message}" for e in errors]
            problems += [f"{short(msg.get('id'), 40)}: {p}" for p in found]
    if problems:
        raise Failed(f"{len(problems)} problems, first: {problems[0]}")
    return f"{count} responses valid"


async def notifications_match_schemas(t: Target) -> str:
    problems, count = [], 0
    for client in t.clients:
        for msg in client.log:
            if "method" not in msg:
                continue
            count += 1
            if "id" in msg:
                problems.append(f"sent a request ({msg['method']}); providers send none in v1")
            elif not msg["method"].startswith("$/"):
                problems.append(f"unknown notification {msg['method']!r}")
            problems += t.schemas.check_outgoing(msg)
    if problems:
        raise Failed(f"{len(problems)} problems, first: {problems[0]}")
    return f"{count} notifications valid"


async def one_response_per_request(t: Target) -> str:
    for client in t.clients:
        seen: set[Any] = set()
        for msg in client.log:
            if "method" in msg or msg.get("id") is None:
                continue
            key = id_key(msg.get("id"))
            if key not in client.requests:
                raise Failed(f"response to an id never sent: {short(msg)}")
            if key in seen:
                raise Failed(f"two responses for id {short(msg.get('id'))}")
            seen.add(key)
    return "no duplicates, no unknown ids"


Check = Callable[[Target], Awaitable[str]]

# Order matters: aggregate traffic checks last; cases that may kill the shared session late.
CASES: tuple[tuple[str, Check], ...] = (
    ("handshake.silent_before_initialize", silent_before_initialize),
    ("handshake.initialize_answered", initialize_answered),
    ("handshake.result_schema", initialize_result_schema),
    ("handshake.method_descriptors", method_descriptors),
    ("handshake.version_mismatch", version_mismatch),
    ("handshake.limits", announced_limits),
    ("handshake.timeouts_declared", timeouts_declared),
    ("lifecycle.ping_before_initialize", ping_before_initialize),
    ("lifecycle.request_before_initialize", request_before_initialize),
    ("lifecycle.request_before_initialized", request_before_initialized),
    ("lifecycle.second_initialize", second_initialize),
    ("requests.ping", ping_answered),
    ("requests.health", health_answered),
    ("requests.fast_sample", fast_sample_succeeds),
    ("errors.unknown_method", unknown_method),
    ("errors.unknown_dollar_request", unknown_dollar_request),
    ("errors.invalid_params.wrong_type", invalid_params_wrong_type),
    ("errors.invalid_params.missing", invalid_params_missing),
    ("errors.invalid_params.unknown", invalid_params_unknown),
    ("errors.empty_method", empty_method),
    ("errors.params_not_object", params_not_object),
    ("framing.parse_error", parse_error),
    ("framing.invalid_utf8", invalid_utf8),
    ("framing.invalid_request.jsonrpc_version", invalid_request_version),
    ("framing.invalid_request.no_method", invalid_request_no_method),
    ("framing.invalid_request.method_type", invalid_request_method_type),
    ("framing.invalid_request.object_id", invalid_request_object_id),
    ("framing.invalid_request.scalar_params", invalid_request_scalar_params),
    ("framing.batch_rejected", batch_rejected),
    ("framing.blank_lines_ignored", blank_lines_ignored),
    ("framing.crlf", crlf_line_end),
    ("framing.byte_order_mark", byte_order_mark),
    ("framing.response_from_host_ignored", response_from_host_ignored),
    ("ids.int_and_string", ids_int_and_string),
    ("ids.large_integer", ids_large_integer),
    ("ids.unicode", ids_unicode),
    ("ids.null", null_id_request),
    ("ids.float", float_id),
    ("ids.fractional", fractional_id),
    ("ids.boolean", boolean_id),
    ("ids.lone_surrogate", lone_surrogate_id),
    ("values.deep_nesting", deep_nesting),
    ("values.huge_integer", huge_integer),
    ("values.nan", nan_literal),
    ("values.lone_surrogate", lone_surrogate),
    ("notifications.never_answered", notifications_never_answered),
    ("concurrency.ping_while_busy", ping_while_busy),
    ("concurrency.overload", overload),
    ("concurrency.out_of_order", out_of_order),
    ("cancel.one_response", cancel_one_response),
    ("cancel.nothing_after_response", cancel_nothing_after_response),
    ("cancel.unknown_or_finished_id", cancel_unknown_id),
    ("progress.monotonic", progress_monotonic),
    ("progress.needs_token", progress_needs_token),
    ("size.large_message", large_message),
    ("size.large_unicode_id", large_id_roundtrip),
    ("size.oversized_message", oversized_message),
    ("size.exactly_the_limit", exactly_the_limit),
    ("size.one_over_the_limit", one_over_the_limit),
    ("shutdown.sequence", shutdown_sequence),
    ("exit.stdin_eof_idle", exit_on_eof_idle),
    ("exit.stdin_eof_busy", exit_on_eof_busy),
    ("exit.stdin_eof_answers_in_flight", exit_on_eof_answers_in_flight),
    ("exit.sigterm", sigterm_exits),
    ("traffic.stdout_only_jsonrpc", stdout_only_jsonrpc),
    ("traffic.responses_match_schemas", responses_match_schemas),
    ("traffic.notifications_match_schemas", notifications_match_schemas),
    ("traffic.one_response_per_request", one_response_per_request),
)
