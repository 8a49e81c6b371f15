"""SQLite store (the default): one file, safe for several processes at once.

WAL lets readers run while one process writes; ``busy_timeout`` makes a writer
wait for another process's (short) transaction instead of failing at once.
Every write method is one ``BEGIN IMMEDIATE ... COMMIT``: taking the write
lock up front means a transaction never has to upgrade a read lock, which is
where SQLite would give up with "database is locked" despite the timeout.
``synchronous=NORMAL`` in WAL mode loses no committed data on a process crash
(only, at worst, the last transactions on a power loss) and avoids an fsync
per state change.

The schema version lives in ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes a
database from version i to i+1 and runs on open, inside the write lock, so two
processes opening a new file at once migrate it exactly once.
"""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
from enum import Enum
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import aiosqlite
import anyio

from gleitzeit_core.errors import StoreUnavailable
from gleitzeit_core.store.blobs import BlobFolder
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import (
    AttemptRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
    now,
)

#: how long a writer waits for another process's transaction before giving up
DEFAULT_BUSY_TIMEOUT_MS = 5000

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: runs, tasks (seq = creation order), attempts
    (
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            workflow_id TEXT NOT NULL,
            workflow_name TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            workflow_path TEXT,
            workflow_hash TEXT,
            definition TEXT NOT NULL,
            error TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX runs_by_created ON runs(created_at)",
        "CREATE INDEX runs_by_status ON runs(status, created_at)",
        "CREATE INDEX runs_by_workflow ON runs(workflow_name, created_at)",
        """CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            run_id TEXT NOT NULL,
            key TEXT NOT NULL,
            name TEXT NOT NULL,
            protocol TEXT NOT NULL,
            method TEXT NOT NULL,
            workflow_name TEXT NOT NULL,
            priority INTEGER NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            result TEXT NOT NULL,
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            next_attempt_at REAL
        )""",
        "CREATE INDEX tasks_by_run ON tasks(run_id, seq)",
        "CREATE INDEX tasks_by_created ON tasks(created_at)",
        "CREATE INDEX tasks_by_status ON tasks(status, created_at)",
        "CREATE INDEX tasks_by_workflow ON tasks(workflow_name, created_at)",
        """CREATE TABLE attempts (
            task_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            error TEXT,
            retryable INTEGER,
            PRIMARY KEY (task_id, number)
        ) WITHOUT ROWID""",
        "CREATE INDEX attempts_by_run ON attempts(run_id)",
    ),
    # 1 -> 2: which engine owns a run (and its heartbeat), paused time, output, result blobs
    (
        "ALTER TABLE runs ADD COLUMN owner_host TEXT",
        "ALTER TABLE runs ADD COLUMN owner_pid INTEGER",
        "ALTER TABLE runs ADD COLUMN owner_started_at REAL",
        "ALTER TABLE runs ADD COLUMN heartbeat_at REAL",
        "ALTER TABLE runs ADD COLUMN paused_seconds REAL NOT NULL DEFAULT 0",
        "ALTER TABLE tasks ADD COLUMN paused_seconds REAL NOT NULL DEFAULT 0",
        "ALTER TABLE tasks ADD COLUMN result_blob TEXT",
        "ALTER TABLE attempts ADD COLUMN stdout TEXT",
        "ALTER TABLE attempts ADD COLUMN stderr TEXT",
    ),
    # 2 -> 3: result cache (gleitzeit_core/cache/sqlite_table.py) and where a hit came from
    (
        "ALTER TABLE tasks ADD COLUMN cached_from TEXT",
        """CREATE TABLE cache (
            key TEXT PRIMARY KEY,
            method TEXT NOT NULL,
            workflow_name TEXT NOT NULL,
            task_key TEXT NOT NULL,
            task_name TEXT NOT NULL,
            source_run_id TEXT NOT NULL,
            source_task_id TEXT NOT NULL,
            key_doc TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL,
            result TEXT NOT NULL,
            result_blob TEXT,
            size INTEGER NOT NULL,
            hits INTEGER NOT NULL,
            last_hit_at REAL
        ) WITHOUT ROWID""",
        "CREATE INDEX cache_by_task ON cache(workflow_name, task_key, created_at)",
    ),
)

_RUN_COLS = (
    "run_id", "workflow_id", "workflow_name", "status", "created_at", "updated_at",
    "started_at", "finished_at", "workflow_path", "workflow_hash", "definition",
    "error", "cancel_requested", "owner_host", "owner_pid", "owner_started_at", "heartbeat_at",
    "paused_seconds",
)  # fmt: skip
_TASK_COLS = (
    "id", "run_id", "key", "name", "protocol", "method", "workflow_name", "priority",
    "status", "attempts", "result", "error", "created_at", "updated_at", "started_at",
    "finished_at", "next_attempt_at", "paused_seconds", "result_blob", "cached_from",
)  # fmt: skip
_ATTEMPT_COLS = (
    "task_id", "run_id", "number", "status", "started_at", "finished_at", "error", "retryable",
    "stdout", "stderr",
)  # fmt: skip
_JSON_COLS = frozenset({"definition", "result"})


# a record that breaks the schema is a bug to see with its traceback, not an outage
_OUR_BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


def _upsert(
    table: str, cols: Sequence[str], key: Sequence[str], update: dict[str, str] | None = None
) -> str:
    """INSERT ... ON CONFLICT DO UPDATE: unlike REPLACE, keeps the row (and its seq)."""
    update = update or {}
    sets = ", ".join(f"{c} = {update.get(c, f'excluded.{c}')}" for c in cols if c not in key)
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT({', '.join(key)}) DO UPDATE SET {sets}"
    )


_UPSERT_RUN = _upsert(
    "runs",
    _RUN_COLS,
    ("run_id",),
    # a cancel request from another process survives the engine saving its own copy
    {"cancel_requested": "max(cancel_requested, excluded.cancel_requested)"},
)
_UPSERT_TASK = _upsert("tasks", _TASK_COLS, ("id",))
_UPSERT_ATTEMPT = _upsert("attempts", _ATTEMPT_COLS, ("task_id", "number"))


def _row(record: Any, cols: Sequence[str]) -> tuple[Any, ...]:
    # Straight from the attributes: building to_dict() per write cost 13% of a run.
    values = []
    for c in cols:
        v = getattr(record, c)
        values.append(json.dumps(v) if c in _JSON_COLS else v.value if isinstance(v, Enum) else v)
    return tuple(values)


def _record(cls: Any, cols: Sequence[str], row: Sequence[Any]) -> Any:
    d = {c: json.loads(v) if c in _JSON_COLS else v for c, v in zip(cols, row)}
    if "cancel_requested" in d:
        d["cancel_requested"] = bool(d["cancel_requested"])
    if d.get("retryable") is not None:
        d["retryable"] = bool(d["retryable"])
    return cls.from_dict(d)


async def _abandon(db: aiosqlite.Connection) -> None:
    """Stop aiosqlite's thread without closing the SQLite handle: closing checkpoints
    the WAL through the memory-mapped ``-shm``, which is SIGBUS once that file cannot
    be written. The handle is kept referenced so it is never finalised either; the
    process is about to exit, which releases it without touching the files."""
    conn = db._connection
    if conn is not None:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(conn))
    db._connection = None
    stopped = db.stop()
    if stopped is not None:
        await stopped


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    used = {c: v for c, v in filters.items() if v is not None}
    clause = " AND ".join(f"{c} = ?" for c in used)
    return (f" WHERE {clause}" if clause else ""), list(used.values())


def _limit(limit: int | None) -> str:
    return "" if limit is None else f" LIMIT {max(int(limit), 0)}"


class SQLiteBackend(Store):
    kind = "sqlite"
    migrations = MIGRATIONS

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.path = Path(path).expanduser()
        self.busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        # one connection, many coroutines: a transaction must not interleave with another
        self._lock = anyio.Lock()
        # identity of the files we opened: a write first checks they are still there
        self._files: dict[Path, tuple[int, int]] = {}
        self._broken = False  # set once they are not: from then on SQLite must not touch them
        self.blobs = BlobFolder(self.path.with_name(self.path.name + ".blobs"))

    @property
    def address(self) -> str:
        return str(self.path)

    async def open(self) -> None:
        # A new lock on the loop that opens the store: one built under trio is used by
        # the Python API on an asyncio loop in a worker thread.
        self._lock = anyio.Lock()
        parent = self.path.parent
        if parent.exists() and not parent.is_dir():
            raise StoreUnavailable(
                f"sqlite backend cannot open {self.path}: {parent} is not a directory"
            )
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._pragma(f"busy_timeout = {int(self.busy_timeout_ms)}")
            await self._enable_wal()
            await self._pragma("synchronous = NORMAL")
            await self._migrate()
            self._files = {p: _identity(p) for p in self._paths() if p.exists()}
        except (OSError, sqlite3.Error) as e:
            await self.close()
            raise StoreUnavailable(
                f"sqlite backend cannot open {self.path}: {self._reason(e)}"
            ) from e
        except BaseException:
            await self.close()
            raise

    def _paths(self) -> tuple[Path, Path, Path]:
        return (self.path, self.path.with_name(self.path.name + "-wal"),
                self.path.with_name(self.path.name + "-shm"))

    def _check_files(self) -> None:
        """Refuse to write into a store that is no longer the file at our path.

        SQLite keeps writing to a deleted (or replaced) file through its open
        descriptors, so a run would "complete" into a file nobody can open; and
        it memory-maps ``-shm``: once that file cannot be written (chattr +i, a
        read-only remount) the next read or write dies of SIGBUS. Three stat and
        access calls per statement (microseconds against a ~200 µs commit) turn
        both into StoreUnavailable before SQLite touches the files. (A change in
        the microseconds between the check and SQLite's access is not caught.)
        """
        try:
            self._check_each_file()
        except StoreUnavailable:
            self._broken = True
            raise

    def _check_each_file(self) -> None:
        for path, identity in self._files.items():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise StoreUnavailable(
                    f"sqlite backend {self.path}: {path.name} was deleted while in use; "
                    "stopping (what this run wrote after that is lost)") from None
            if (st.st_dev, st.st_ino) != identity:
                raise StoreUnavailable(
                    f"sqlite backend {self.path}: {path.name} was replaced by another file while in use; stopping")
            if not os.access(path, os.W_OK):
                raise StoreUnavailable(
                    f"sqlite backend {self.path}: {path.name} is no longer writable (permissions, "
                    "immutable flag or read-only file system); stopping")

    async def _pragma(self, pragma: str) -> None:
        async with self._conn.execute(f"PRAGMA {pragma}") as cur:
            await cur.fetchall()

    async def _enable_wal(self) -> None:
        """Two processes switching a *new* file to WAL at once can deadlock; SQLite
        then fails one at once instead of calling the busy handler. So retry, within
        the busy timeout. (A file already in WAL mode needs no lock for this.)"""
        deadline = anyio.current_time() + self.busy_timeout_ms / 1000
        while True:
            try:
                return await self._pragma("journal_mode = WAL")
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or anyio.current_time() > deadline:
                    raise
            await anyio.sleep(0.01)

    async def _migrate(self) -> None:
        if await self._user_version() == len(self.migrations):
            return  # the usual case: no write lock needed just to open
        db = self._conn
        await db.execute("BEGIN IMMEDIATE")
        try:
            version = await self._user_version()
            if version > len(self.migrations):
                raise StoreUnavailable(
                    f"sqlite backend {self.path}: schema version {version} is newer than this "
                    f"gleitzeit understands ({len(self.migrations)}); upgrade gleitzeit"
                )
            for target, statements in enumerate(self.migrations[version:], start=version + 1):
                for statement in statements:
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {target}")
            await db.commit()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await db.rollback()
            raise

    async def _user_version(self) -> int:
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def schema_version(self) -> int:
        """The schema version of the open file (for tests and diagnostics)."""
        async with self._guard():
            return await self._user_version()

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        with anyio.CancelScope(shield=True):
            if self._broken:
                await _abandon(db)
            else:
                await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SQLiteBackend used before open()")
        return self._db

    def _reason(self, e: BaseException) -> str:
        if isinstance(e, OSError) and e.strerror:
            return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
        text = str(e) or type(e).__name__
        if "locked" in text or "busy" in text:
            text += (
                f" (another process held it longer than the {self.busy_timeout_ms} ms"
                " busy timeout)"
            )
        return text

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Serialise use of the connection; SQLite failures become StoreUnavailable.
        Reads too check the files first: even a read writes to ``-shm``."""
        async with self._lock:
            self._check_files()
            try:
                yield
            except _OUR_BUGS:
                raise
            except sqlite3.Error as e:
                raise StoreUnavailable(f"sqlite backend {self.path}: {self._reason(e)}") from e

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._guard():
            db = self._conn
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.commit()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await db.rollback()
                raise

    # -- writes ---------------------------------------------------------------
    async def _write(self, statements: list[tuple[str, list[Sequence[Any]]]]) -> None:
        """One whole transaction in a single hop to aiosqlite's thread.

        Each aiosqlite call (BEGIN, every execute, COMMIT) is otherwise its own
        round trip to that thread — the benchmark's biggest cost per task.
        ``Connection._execute`` is aiosqlite's (private, long-stable) way to run
        a function on its thread, serialised with every other call.
        """

        def transaction(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in statements:
                    conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.rollback()
                raise

        async with self._guard():
            db = self._conn
            await db._execute(transaction, db._connection)

    async def create_run(self, run: RunRecord, tasks: Sequence[TaskRecord]) -> None:
        await self._write([(_UPSERT_RUN, [_row(run, _RUN_COLS)]),
                           (_UPSERT_TASK, [_row(t, _TASK_COLS) for t in tasks])])

    async def save_run(self, run: RunRecord) -> None:
        await self._write([(_UPSERT_RUN, [_row(run, _RUN_COLS)])])

    async def save_task(self, task: TaskRecord, attempt: AttemptRecord | None = None) -> None:
        statements = [(_UPSERT_TASK, [_row(task, _TASK_COLS)])]
        if attempt is not None:
            statements.append((_UPSERT_ATTEMPT, [_row(attempt, _ATTEMPT_COLS)]))
        await self._write(statements)

    async def save_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        await self._write([(_UPSERT_TASK, [_row(t, _TASK_COLS) for t in tasks])])

    async def request_cancel(self, run_id: str, cancel: bool = True) -> bool:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE runs SET cancel_requested = ? WHERE run_id = ?", (int(cancel), run_id)
            )
            return cur.rowcount > 0

    async def heartbeat(self, run_id: str, at: float) -> bool | None:
        async with self._transaction() as db:
            async with db.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE run_id = ? RETURNING cancel_requested", (at, run_id)
            ) as cur:
                row = await cur.fetchone()
        return None if row is None else bool(row[0])

    async def mark_interrupted(self, run_id: str, heartbeat_at: float | None, error: str) -> bool:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ? "
                "AND status IN (?, ?) AND heartbeat_at IS ?",
                (RunStatus.INTERRUPTED.value, error, now(), run_id, RunStatus.PENDING.value,
                 RunStatus.RUNNING.value, heartbeat_at))
            return cur.rowcount > 0

    async def delete_run(self, run_id: str) -> bool:
        async with self._transaction() as db:
            await db.execute("DELETE FROM attempts WHERE run_id = ?", (run_id,))
            await db.execute("DELETE FROM tasks WHERE run_id = ?", (run_id,))
            cur = await db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            existed = cur.rowcount > 0
        await self.blobs.delete_run(run_id)  # after the records: no record ever points at a missing blob
        return existed

    async def put_blob(self, run_id: str, digest: str, data: bytes) -> None:
        self._check_files()
        await self.blobs.put(run_id, digest, data)

    async def get_blob(self, run_id: str, digest: str) -> bytes | None:
        return await self.blobs.get(run_id, digest)

    # -- reads ----------------------------------------------------------------
    async def _select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._guard():
            async with self._conn.execute(sql, params) as cur:
                return list(await cur.fetchall())

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._select(
            f"SELECT {', '.join(_RUN_COLS)} FROM runs WHERE run_id = ?", (run_id,)
        )
        return _record(RunRecord, _RUN_COLS, rows[0]) if rows else None

    async def list_runs(
        self,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        where, params = _where(
            {"status": RunStatus(status).value if status else None, "workflow_name": workflow_name}
        )
        rows = await self._select(
            f"SELECT {', '.join(_RUN_COLS)} FROM runs{where} "
            f"ORDER BY created_at DESC, rowid DESC{_limit(limit)}",
            params,
        )
        return [_record(RunRecord, _RUN_COLS, r) for r in rows]

    async def get_task(self, task_id: str) -> TaskRecord | None:
        rows = await self._select(
            f"SELECT {', '.join(_TASK_COLS)} FROM tasks WHERE id = ?", (task_id,)
        )
        return _record(TaskRecord, _TASK_COLS, rows[0]) if rows else None

    async def list_tasks(
        self,
        run_id: str | None = None,
        status: TaskStatus | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRecord]:
        where, params = _where(
            {
                "run_id": run_id,
                "status": TaskStatus(status).value if status else None,
                "workflow_name": workflow_name,
            }
        )
        order = "seq" if run_id is not None else "created_at DESC, seq DESC"
        rows = await self._select(
            f"SELECT {', '.join(_TASK_COLS)} FROM tasks{where} ORDER BY {order}{_limit(limit)}",
            params,
        )
        return [_record(TaskRecord, _TASK_COLS, r) for r in rows]

    async def get_attempts(self, task_id: str) -> list[AttemptRecord]:
        rows = await self._select(
            f"SELECT {', '.join(_ATTEMPT_COLS)} FROM attempts WHERE task_id = ? ORDER BY number",
            (task_id,),
        )
        return [_record(AttemptRecord, _ATTEMPT_COLS, r) for r in rows]

    async def list_run_attempts(self, run_id: str) -> dict[str, list[AttemptRecord]]:
        rows = await self._select(
            f"SELECT {', '.join(_ATTEMPT_COLS)} FROM attempts WHERE run_id = ? ORDER BY task_id, number",
            (run_id,),
        )
        out: dict[str, list[AttemptRecord]] = {}
        for r in rows:
            attempt = _record(AttemptRecord, _ATTEMPT_COLS, r)
            out.setdefault(attempt.task_id, []).append(attempt)
        return out

    async def stats(self) -> dict[str, Any]:
        runs = {s.value: 0 for s in RunStatus}
        tasks = {s.value: 0 for s in TaskStatus}
        for status, n in await self._select("SELECT status, count(*) FROM runs GROUP BY status"):
            runs[status] = n
        for status, n in await self._select("SELECT status, count(*) FROM tasks GROUP BY status"):
            tasks[status] = n
        return {
            "runs": runs,
            "tasks": tasks,
            "runs_total": sum(runs.values()),
            "tasks_total": sum(tasks.values()),
        }
