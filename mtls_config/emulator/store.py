"""Where an emulated instance keeps its state: records per table and attachment bytes in memory, written through
to SQLite (stdlib) when a database path is given, and the per-instance key that encrypts password2 values.

The store knows rows and bytes, nothing of tables' rules, users or HTTP. Stored records are never changed in
place: a write saves a new dict, so a reader that took a record (or a list of them) under the instance lock can
keep using it after releasing the lock.

Several processes may open one database (two CLI runs on the embedded local instance, or servers on one file):
``InstanceLock`` makes them take turns, one operation at a time, as one instance serves its clients. It holds a
file lock (``fcntl.flock`` on ``<database>.lock`` beside it) for each operation, reloads what another process
committed since this one last looked, and commits the operation's writes as one transaction, so an operation is
whole or absent even when its process is killed half-way.

Must never import: starlette or any HTTP library, the client, the engine, ``mtls_config.keystore``.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from cryptography.fernet import Fernet, InvalidToken

Record = dict[str, str]


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


class InstanceLock:
    """The instance lock, held around every operation of the backend (re-entrant within a thread). Without a
    database it is a thread lock. With one it also holds the database's file lock, so that every process using
    the file takes turns: at the outermost acquisition it runs ``on_acquire`` (the store reloads what others
    committed and opens a transaction), at the outermost release ``on_release`` (the store commits).

    The file lock is held per operation, not per command: two CLI runs interleave their requests as two
    clients of one instance do, and one that is killed frees the lock with its process (the kernel drops it)."""

    def __init__(self, db_path: Path | None) -> None:
        self._thread = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        if db_path is not None:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.on_acquire: Callable[[], None] | None = None
        self.on_release: Callable[[], None] | None = None

    def __enter__(self) -> InstanceLock:
        self._thread.acquire()
        self._depth += 1
        if self._depth == 1 and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                if self.on_acquire is not None:
                    self.on_acquire()
            except BaseException:
                self._leave()
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._depth == 1 and self._fd is not None and self.on_release is not None:
                self.on_release()
        finally:
            self._leave()

    def _leave(self) -> None:
        if self._depth == 1 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._depth -= 1
        self._thread.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Store:
    """Records by table and sys_id (insertion order kept, also across restarts) and attachment bytes by sys_id.

    Not thread-safe on its own: the backend holds its lock around every call. With a database, ``begin`` and
    ``commit`` bracket each operation (``InstanceLock`` calls them) so that other processes' writes are seen.
    """

    def __init__(self, db_path: Path | None, tables: Iterable[str], *, seed_data: bool) -> None:
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in tables}
        self.blobs: dict[str, bytes] = {}
        self._db: sqlite3.Connection | None = None
        self._seq = 0
        self.fresh = True  # a new state: nothing was ever seeded or written into it
        if db_path is None:
            return
        existed = db_path.exists()
        db_path.parent.mkdir(parents=True, exist_ok=True)
        if not existed:
            # The state holds keystore files and passwords: owner-only (SQLite gives its WAL the same mode).
            db_path.touch(mode=0o600)
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: each change is durable against a crash of this process without an fsync per write.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS records (tbl TEXT, sys_id TEXT, data TEXT NOT NULL, seq INTEGER,"
            " PRIMARY KEY (tbl, sys_id));"
            "CREATE TABLE IF NOT EXISTS blobs (sys_id TEXT PRIMARY KEY, content BLOB NOT NULL);"
        )
        # A file whose creation was interrupted has no meta rows yet: it is still new.
        self.fresh = not existed or self._db.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0
        if self.fresh:
            self.set_meta("seed", "pending" if seed_data else "none")
        self._load()
        self._version = self._data_version()

    def _data_version(self) -> int:
        assert self._db is not None
        # Changes whenever another connection (another process) has committed to the file since the last call.
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def begin(self) -> None:
        """Start an operation: see what other processes committed meanwhile, and open its transaction."""
        if self._db is None:
            return
        version = self._data_version()
        if version != self._version:
            for table in self.tables.values():
                table.clear()
            self.blobs.clear()
            self._load()
            self._version = version
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """End an operation: its writes become visible to other processes together."""
        if self._db is not None and self._db.in_transaction:
            self._db.execute("COMMIT")

    @property
    def persistent(self) -> bool:
        return self._db is not None

    def _load(self) -> None:
        assert self._db is not None
        for tbl, sys_id, data, seq in self._db.execute("SELECT tbl, sys_id, data, seq FROM records ORDER BY seq"):
            self._seq = max(self._seq, seq or 0)
            if tbl in self.tables:
                self.tables[tbl][sys_id] = json.loads(data)
        for sys_id, content in self._db.execute("SELECT sys_id, content FROM blobs"):
            self.blobs[sys_id] = bytes(content)

    def meta(self, key: str) -> str | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def save(self, table: str, record: Record) -> None:
        self.tables[table][record["sys_id"]] = record
        if self._db is not None:
            self._seq += 1  # insertion order survives a restart; an update keeps the record's place
            self._db.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (tbl, sys_id) DO UPDATE SET data = excluded.data",
                (table, record["sys_id"], json.dumps(record), self._seq),
            )

    def remove(self, table: str, sys_id: str, *, with_blob: bool = False) -> None:
        """Forget a record (and, for an attachment, its bytes)."""
        self.tables[table].pop(sys_id, None)
        if self._db is not None:
            self._db.execute("DELETE FROM records WHERE tbl = ? AND sys_id = ?", (table, sys_id))
        if with_blob:
            self.blobs.pop(sys_id, None)
            if self._db is not None:
                self._db.execute("DELETE FROM blobs WHERE sys_id = ?", (sys_id,))

    def put_blob(self, sys_id: str, content: bytes) -> None:
        self.blobs[sys_id] = content
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?)", (sys_id, content))

    def clear(self) -> None:
        for table in self.tables.values():
            table.clear()
        self.blobs.clear()
        if self._db is not None:
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM blobs")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class Vault:
    """password2 values: reversibly encrypted under a per-instance key, as on the instance, never stored clear.
    With a database the key is kept in it, so that stored values can be read after a restart."""

    def __init__(self, store: Store) -> None:
        saved = store.meta("password2_key")
        key = saved.encode() if saved else Fernet.generate_key()
        if saved is None:
            store.set_meta("password2_key", key.decode())
        self._cipher = Fernet(key)

    def encrypt(self, clear: str) -> str:
        return self._cipher.encrypt(clear.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored:
            return ""
        try:
            return self._cipher.decrypt(stored.encode()).decode()
        except InvalidToken:
            return ""
