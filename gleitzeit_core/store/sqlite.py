"""SQLite store (the default): one file, safe for several processes at once.

WAL lets readers run while one process writes; a writer that finds another
process's (short) transaction waits up to ``busy_timeout_ms`` instead of failing
at once. Every write is one ``BEGIN IMMEDIATE ... COMMIT`` (``_transact``), and the
saves of one event-loop turn share one (group commit, store/batch.py).
``synchronous=NORMAL`` (the default) in WAL mode loses no committed data on a
process crash -- only, at worst, the last transactions on a power loss -- and
avoids an fsync per commit; ``synchronous="full"`` (config
``persistence.sqlite.synchronous: full``) syncs every commit (docs/persistence.md).

The standard library's ``sqlite3`` driver, one connection: every use goes
through ``_run``, which serialises it, runs NORMAL write transactions on the
event loop (microseconds) and everything else in a worker thread.

The schema version lives in ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes a
database from version i to i+1 and runs on open, inside the write lock, so two
processes opening a new file at once migrate it exactly once.
"""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
from contextlib import asynccontextmanager
from operator import attrgetter
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Sequence, TypeVar

import anyio
import anyio.to_thread

from gleitzeit_core.errors import StoreUnavailable
from gleitzeit_core.store.blobs import BlobFolder
from gleitzeit_core.store.base import KEPT_ON_SAVE, TASK_IDENTITY, Store
from gleitzeit_core.store.batch import Writes
from gleitzeit_core.store.factory import SQLITE_SYNCHRONOUS
from gleitzeit_core.store.log_sqlite import MIGRATION as LOG_LINES_MIGRATION
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

#: The cache's bound (gleitzeit_core/cache/sqlite_table.py): the order by last use, expiry, and its
#: totals, kept by triggers in the transaction of every insert and delete.
CACHE_BOUND_MIGRATION: tuple[str, ...] = (
    "CREATE INDEX cache_by_use ON cache(coalesce(last_hit_at, created_at))",
    "CREATE INDEX cache_by_expiry ON cache(expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE cache_totals (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        entries INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        evictions INTEGER NOT NULL
    )""",
    "INSERT INTO cache_totals SELECT 1, count(*), coalesce(sum(size), 0), 0 FROM cache",
    """CREATE TRIGGER cache_added AFTER INSERT ON cache BEGIN
        UPDATE cache_totals SET entries = entries + 1, bytes = bytes + NEW.size;
    END""",
    """CREATE TRIGGER cache_removed AFTER DELETE ON cache BEGIN
        UPDATE cache_totals SET entries = entries - 1, bytes = bytes - OLD.size;
    END""",
)

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
    # 3 -> 4: the items of map tasks (for_each): their map, index and item
    (
        "ALTER TABLE tasks ADD COLUMN parent TEXT",
        "ALTER TABLE tasks ADD COLUMN item_index INTEGER",
        "ALTER TABLE tasks ADD COLUMN item TEXT",
    ),
    # 4 -> 5: what attempts printed, line by line (gleitzeit_core/store/log_sqlite.py)
    LOG_LINES_MIGRATION,
    # 5 -> 6: the cache's bound
    CACHE_BOUND_MIGRATION,
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
    "finished_at", "next_attempt_at", "paused_seconds", "result_blob", "cached_from", "parent", "item_index",
    "item",
)  # fmt: skip
_ATTEMPT_COLS = (
    "task_id", "run_id", "number", "status", "started_at", "finished_at", "error", "retryable",
    "stdout", "stderr",
)  # fmt: skip
_JSON_COLS = frozenset({"definition", "result", "item"})


# a record that breaks the schema is a bug to see with its traceback, not an outage
_OUR_BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)

_SYNCHRONOUS_NAMES = {0: "off", 1: "normal", 2: "full", 3: "extra"}
#: the first wait when another process holds the write lock; doubled up to _MAX_WAIT_S
_FIRST_WAIT_S = 0.001
_MAX_WAIT_S = 0.05

_T = TypeVar("_T")


def _upsert(
    table: str, cols: Sequence[str], key: Sequence[str], keep: Iterable[str] = ()
) -> str:
    """INSERT ... ON CONFLICT DO UPDATE: unlike REPLACE, keeps the row (and its seq).
    Columns in ``keep`` are written by the insert only."""
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key and c not in keep)
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT({', '.join(key)}) DO UPDATE SET {sets}"
    )


_UPSERT_RUN = _upsert("runs", _RUN_COLS, ("run_id",), KEPT_ON_SAVE)
_UPSERT_TASK = _upsert("tasks", _TASK_COLS, ("id",), TASK_IDENTITY)
_UPSERT_ATTEMPT = _upsert("attempts", _ATTEMPT_COLS, ("task_id", "number"))


def _row_builder(cols: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A record's column values in one C-level attribute fetch, then only the few
    columns that need converting (enum → its value, JSON → text): building the
    row value by value was the single biggest Python cost of a write."""
    get = attrgetter(*cols)
    enums = [i for i, c in enumerate(cols) if c == "status"]
    json_cols = [i for i, c in enumerate(cols) if c in _JSON_COLS]

    def row(record: Any) -> tuple[Any, ...]:
        values = list(get(record))
        for i in enums:
            values[i] = values[i].value
        for i in json_cols:
            value = values[i]
            values[i] = "null" if value is None else json.dumps(value)  # most rows: no result (yet), no item
        return tuple(values)

    return row


_run_row = _row_builder(_RUN_COLS)
_task_row = _row_builder(_TASK_COLS)
_attempt_row = _row_builder(_ATTEMPT_COLS)


def _record(cls: Any, cols: Sequence[str], row: Sequence[Any]) -> Any:
    d = {c: json.loads(v) if c in _JSON_COLS else v for c, v in zip(cols, row)}
    if "cancel_requested" in d:
        d["cancel_requested"] = bool(d["cancel_requested"])
    if d.get("retryable") is not None:
        d["retryable"] = bool(d["retryable"])
    return cls.from_dict(d)


def _abandon(db: sqlite3.Connection) -> None:
    """Drop the connection without closing the SQLite handle: closing checkpoints the
    WAL through the memory-mapped ``-shm``, which is SIGBUS once that file cannot be
    written. The handle is kept referenced so it is never finalised either; the
    process is about to exit, which releases it without touching the files."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(db))


def _busy(e: sqlite3.OperationalError) -> bool:
    text = str(e)
    return "locked" in text or "busy" in text


def _in_transaction(fn: Callable[[sqlite3.Connection], _T]) -> Callable[[sqlite3.Connection], _T]:
    """``fn`` inside BEGIN IMMEDIATE ... COMMIT: taking the write lock up front means
    the transaction never upgrades a read lock (where SQLite gives up at once)."""

    def transaction(conn: sqlite3.Connection) -> _T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        return out

    return transaction


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

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                 synchronous: str = "normal"):
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}, not {synchronous!r}")
        self.path = Path(path).expanduser()
        self.busy_timeout_ms = busy_timeout_ms
        self.synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        # one connection, many coroutines: a transaction must not interleave with another.
        # fast_acquire: an uncontended lock (the usual case) is taken without yielding a loop
        # turn -- every write transaction takes it, so the yield was one turn per commit.
        self._lock = anyio.Lock(fast_acquire=True)
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
        self._lock = anyio.Lock(fast_acquire=True)
        parent = self.path.parent
        if parent.exists() and not parent.is_dir():
            raise StoreUnavailable(
                f"sqlite backend cannot open {self.path}: {parent} is not a directory"
            )
        try:
            parent.mkdir(parents=True, exist_ok=True)
            # SQLite's own busy handler is off (timeout=0): _run waits for another
            # process's lock by sleeping on the event loop instead of in C.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
            await self._run(lambda c: c.execute("PRAGMA journal_mode = WAL").fetchall())
            await self._run(lambda c: c.execute(f"PRAGMA synchronous = {self.synchronous.upper()}").fetchall())
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
        access calls per transaction (microseconds) turn both into
        StoreUnavailable before SQLite touches the files. (A change in the
        microseconds between the check and SQLite's access is not caught.)
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

    async def _run(self, fn: Callable[[sqlite3.Connection], _T], *, inline: bool = False) -> _T:
        """The one way anything reaches the connection: serialised with every other
        use, waiting (up to the busy timeout) while another process holds the lock.

        ``inline`` runs ``fn`` on the event loop: a write transaction with
        ``synchronous=NORMAL`` is ~15 µs of SQLite (no fsync), far less than the
        ~130 µs hop to a worker thread. Reads (which can be long listings) and
        FULL commits (an fsync each) run in a worker thread instead."""
        db = self._conn
        deadline = anyio.current_time() + self.busy_timeout_ms / 1000
        wait = _FIRST_WAIT_S
        while True:
            try:
                if inline:
                    return fn(db)
                return await anyio.to_thread.run_sync(fn, db)
            except sqlite3.OperationalError as e:
                left = deadline - anyio.current_time()
                if not _busy(e) or left <= 0:
                    raise
            await anyio.sleep(min(wait, left))
            wait = min(wait * 2, _MAX_WAIT_S)

    async def _migrate(self) -> None:
        if await self._user_version() == len(self.migrations):
            return  # the usual case: no write lock needed just to open

        def migrate(conn: sqlite3.Connection) -> None:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(self.migrations):
                raise StoreUnavailable(
                    f"sqlite backend {self.path}: schema version {version} is newer than this "
                    f"gleitzeit understands ({len(self.migrations)}); upgrade gleitzeit"
                )
            for target, statements in enumerate(self.migrations[version:], start=version + 1):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")

        await self._run(_in_transaction(migrate))

    async def _user_version(self) -> int:
        return await self._run(lambda c: int(c.execute("PRAGMA user_version").fetchone()[0]))

    async def schema_version(self) -> int:
        """The schema version of the open file (for tests and diagnostics)."""
        async with self._guard():
            return await self._user_version()

    async def settings(self) -> dict[str, Any]:
        """Read back from the connection, not from what was asked for."""
        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            return {"synchronous": _SYNCHRONOUS_NAMES.get(level, str(level)), "journal_mode": mode}

        async with self._guard():
            return await self._run(read)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        if self._broken:
            _abandon(db)
            return
        with anyio.CancelScope(shield=True):
            async with self._lock:  # after whatever still uses the connection
                await anyio.to_thread.run_sync(db.close)  # closing checkpoints the WAL: file I/O

    @property
    def _conn(self) -> sqlite3.Connection:
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

    async def _transact(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """``fn`` as one transaction (on the loop with NORMAL, in a thread with FULL)."""
        async with self._guard():
            return await self._run(_in_transaction(fn), inline=self.synchronous == "normal")

    async def _write(self, statements: Iterable[tuple[str, Iterable[Sequence[Any]]]]) -> None:
        """Statements, each with its rows, as one transaction (also the cache table's writes)."""
        def write(conn: sqlite3.Connection) -> None:
            for sql, rows in statements:
                conn.executemany(sql, rows)

        await self._transact(write)

    # -- writes ---------------------------------------------------------------
    async def create_run(self, run: RunRecord, tasks: Sequence[TaskRecord]) -> None:
        await self._write([(_UPSERT_RUN, [_run_row(run)]), (_UPSERT_TASK, [_task_row(t) for t in tasks])])

    # group commit (store/batch.py): rows are the snapshots; one transaction per batch
    _encode_run = staticmethod(_run_row)
    _encode_task = staticmethod(_task_row)
    _encode_attempt = staticmethod(_attempt_row)

    async def _commit(self, writes: Writes) -> None:
        await self._write([(sql, rows.values()) for sql, rows in ((_UPSERT_RUN, writes.runs),
                           (_UPSERT_TASK, writes.tasks), (_UPSERT_ATTEMPT, writes.attempts)) if rows])

    async def request_cancel(self, run_id: str, cancel: bool = True) -> bool:
        return await self._transact(lambda c: c.execute(
            "UPDATE runs SET cancel_requested = ? WHERE run_id = ?", (int(cancel), run_id)).rowcount > 0)

    async def heartbeat(self, run_id: str, at: float) -> bool | None:
        rows = await self._transact(lambda c: c.execute(
            "UPDATE runs SET heartbeat_at = ? WHERE run_id = ? RETURNING cancel_requested", (at, run_id)).fetchall())
        return None if not rows else bool(rows[0][0])

    async def mark_interrupted(self, run_id: str, heartbeat_at: float | None, error: str) -> bool:
        return await self._transact(lambda c: c.execute(
            "UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ? "
            "AND status IN (?, ?) AND heartbeat_at IS ?",
            (RunStatus.INTERRUPTED.value, error, now(), run_id, RunStatus.PENDING.value,
             RunStatus.RUNNING.value, heartbeat_at)).rowcount > 0)

    async def delete_run(self, run_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM attempts WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM log_lines WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM tasks WHERE run_id = ?", (run_id,))
            return conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount > 0

        existed = await self._transact(delete)
        await self.blobs.delete_run(run_id)  # after the records: no record ever points at a missing blob
        return existed

    async def put_blob(self, run_id: str, digest: str, data: bytes) -> None:
        self._check_files()
        await self.blobs.put(run_id, digest, data)

    async def get_blob(self, run_id: str, digest: str) -> bytes | None:
        return await self.blobs.get(run_id, digest)

    # -- reads ----------------------------------------------------------------
    async def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._guard():
            return await self._run(lambda c: c.execute(sql, params).fetchall())

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
