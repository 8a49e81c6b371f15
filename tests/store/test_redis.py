"""What only Redis has: a server that can be down, credentials, a key layout."""

from __future__ import annotations

import copy
import json
import socket
from typing import Callable

import anyio
import pytest
import redis

from gleitzeit_core.errors import StoreUnavailable
from gleitzeit_core.store import AttemptRecord, RedisBackend, RunStatus, TaskStatus
from store_builders import make_run, make_tasks

pytestmark = pytest.mark.anyio


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


async def test_unreachable_server_is_one_clear_line() -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    with pytest.raises(StoreUnavailable) as err:
        await RedisBackend(url).open()
    assert str(err.value) == f"redis backend unreachable at {url}: Connection refused"
    assert err.value.exit_code == 2


async def test_password_and_db_from_the_url(redis_server_factory: Callable) -> None:
    server = redis_server_factory()
    with redis.Redis(port=server.port) as admin:
        admin.config_set("requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{server.port}/5"
    run = make_run()
    async with RedisBackend(url) as store:
        assert store.address == f"redis://:***@127.0.0.1:{server.port}/5"
        await store.create_run(run, [])
    with redis.Redis(port=server.port, password="s3cret", db=5) as client:
        assert client.exists(f"gleitzeit:run:{run.run_id}")
    wrong = f"redis://:guess@127.0.0.1:{server.port}/5"
    with pytest.raises(StoreUnavailable) as err:
        await RedisBackend(wrong).open()
    assert "guess" not in str(err.value)
    redacted = f"redis://:***@127.0.0.1:{server.port}/5"
    assert str(err.value).startswith(f"redis backend at {redacted} rejected the credentials")


async def test_tls_url(redis_server_factory: Callable) -> None:
    server = redis_server_factory(tls=True)
    run = make_run()
    async with RedisBackend(server.url) as store:  # rediss://localhost:P/0?ssl_ca_certs=...
        await store.create_run(run, [])
        assert await store.get_run(run.run_id) == run
    plain = f"redis://localhost:{server.port}/0"  # the TLS port does not speak plain text
    with pytest.raises(StoreUnavailable, match=f"unreachable at {plain}"):
        await RedisBackend(plain).open()


async def test_server_gone_mid_run_fails_writes_and_keeps_what_was_written(
    redis_server_factory: Callable,
) -> None:
    server = redis_server_factory(appendonly=True)
    run = make_run(status=RunStatus.RUNNING)
    first, second = make_tasks(run, 2)
    first.status, first.result = TaskStatus.COMPLETED, {"result": "kept"}
    attempt = AttemptRecord(first.id, run.run_id, 1, status=TaskStatus.COMPLETED)
    async with RedisBackend(server.url) as store:
        await store.create_run(run, [first, second])
        await store.save_task(first, attempt)
        written = [copy.deepcopy(first), copy.deepcopy(second)]
        server.stop()
        second.status = TaskStatus.RUNNING
        with pytest.raises(StoreUnavailable, match=f"unreachable at {server.url}"):
            await store.save_task(second)
        with pytest.raises(StoreUnavailable, match=f"unreachable at {server.url}"):
            await store.get_run(run.run_id)
    server.start()  # same port and data dir: the append-only file is replayed
    async with RedisBackend(server.url) as store:
        assert await store.get_run(run.run_id) == run
        assert await store.list_tasks(run_id=run.run_id) == written
        assert await store.get_attempts(first.id) == [attempt]


async def test_key_layout_and_delete_leaves_no_trace(redis_url: str) -> None:
    keep, gone = make_run("keep"), make_run("flow name: with spaces")
    keep_tasks, gone_tasks = make_tasks(keep, 1), make_tasks(gone, 2)
    async with RedisBackend(redis_url) as store:
        await store.create_run(keep, keep_tasks)
        await store.create_run(gone, gone_tasks)
        gone_tasks[0].status = TaskStatus.COMPLETED
        await store.save_task(gone_tasks[0], AttemptRecord(gone_tasks[0].id, gone.run_id, 1))
        with redis.Redis.from_url(redis_url, decode_responses=True) as client:
            keys = set(client.scan_iter("*"))
            assert all(k.startswith("gleitzeit:") for k in keys)
            t0, t1 = (t.id for t in gone_tasks)
            assert {
                f"gleitzeit:run:{gone.run_id}",
                f"gleitzeit:run:{gone.run_id}:tasks",
                f"gleitzeit:task:{t0}",
                f"gleitzeit:task:{t0}:attempts",
                f"gleitzeit:task:{t1}",
                "gleitzeit:runs",
                "gleitzeit:runs:status:pending",
                "gleitzeit:runs:workflow:flow name: with spaces",
                "gleitzeit:tasks",
                "gleitzeit:tasks:status:completed",
                "gleitzeit:tasks:status:pending",
                "gleitzeit:tasks:workflow:flow name: with spaces",
            } <= keys
            assert client.type(f"gleitzeit:run:{gone.run_id}") == "hash"
            assert client.hget(f"gleitzeit:task:{t0}", "status") == '"completed"'
            assert client.zrange(f"gleitzeit:run:{gone.run_id}:tasks", 0, -1) == [t0, t1]

            assert await store.delete_run(gone.run_id) is True
            ids = {gone.run_id, t0, t1}
            for key in client.scan_iter("*"):
                assert not any(i in key for i in ids), key
                if client.type(key) == "zset":
                    assert not ids & set(client.zrange(key, 0, -1)), key
            assert not client.exists("gleitzeit:runs:workflow:flow name: with spaces")
        assert await store.get_run(keep.run_id) == keep


def _script_calls(client: redis.Redis) -> int:
    """Script calls that ran (a first EVALSHA that finds no script fails, then the client loads it)."""
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) - stats.get(f"cmdstat_{c}", {}).get("failed_calls", 0)
               for c in ("eval", "evalsha"))


async def test_one_batch_script_keeps_names_bytes_and_scores_exact(redis_url: str) -> None:
    """A group-commit batch travels as one JSON argument decoded by the server's cjson:
    key names beyond ASCII and beyond the BMP, escapes, and scores at full float
    precision must come out byte for byte as redis-py would have sent them."""
    name = 'flow 🎉 漢字 "quoted" back\\slash\ttab'
    run = make_run(name, created_at=1_700_000_000.123456789)
    tasks = make_tasks(run, 3)
    for i, task in enumerate(tasks):
        task.created_at = run.created_at + i * 1e-6
    async with RedisBackend(redis_url) as store:
        await store.create_run(run, tasks)
        before = store.group_commit.transactions
        for i, task in enumerate(tasks):
            task.status = TaskStatus.COMPLETED if i else TaskStatus.RUNNING
        with redis.Redis.from_url(redis_url) as client:
            calls_before = _script_calls(client)
        async with anyio.create_task_group() as tg:  # one loop turn: one batch, one script call
            for task in tasks:
                tg.start_soon(store.save_task, task, AttemptRecord(task.id, run.run_id, 1, stdout="ü🎉\n"))
        assert store.group_commit.transactions == before + 1
        with redis.Redis.from_url(redis_url) as client:
            assert _script_calls(client) - calls_before == 1  # one script call for all three tasks
            workflow_key = f"gleitzeit:tasks:workflow:{name}".encode()
            assert client.zcard(workflow_key) == 3
            for i, task in enumerate(tasks):
                assert client.zscore("gleitzeit:tasks", task.id) == task.created_at  # full precision
                assert client.zscore(workflow_key, task.id) == task.created_at
                status = b"completed" if i else b"running"
                assert client.zscore(b"gleitzeit:tasks:status:" + status, task.id) == task.created_at
                assert client.zscore(b"gleitzeit:tasks:status:pending", task.id) is None
                assert client.hget(f"gleitzeit:task:{task.id}", "workflow_name").decode() == json.dumps(name)
            listed = await store.list_tasks(run_id=run.run_id)
        assert [(t.id, t.workflow_name, t.created_at) for t in listed] == [(t.id, name, t.created_at) for t in tasks]
        attempts = await store.get_attempts(tasks[0].id)
        assert [a.stdout for a in attempts] == ["ü🎉\n"]
