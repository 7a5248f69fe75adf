"""The usage store: every request the gateway answered, one row each, in SQLite in the stack's state folder.

The file is created 0600 (its folder is 0700) and kept in WAL mode with ``synchronous=NORMAL``:
readers (``ops usage``) never block the writer, and a commit costs no fsync. The rows survive a host
restart: a new host opens the same file and finds its quota windows there (:meth:`UsageStore.tokens_since`).

:meth:`UsageStore.record` is called from the gateway's event loop at the end of each request, so it
only puts the record on a queue (about a microsecond); one writer thread inserts what has queued up
in one transaction. A direct insert costs about 20 us, but a WAL checkpoint's fsync or a reader's lock
can stretch it to several milliseconds, which the event loop would then wait out for every client.
:meth:`UsageStore.flush` waits for the queue to be written; :meth:`UsageStore.close` writes it and stops.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from ops.errors import OpsError
from ops.metering import Usage
from ops.private import FILE_MODE, open_private, private_dir

log = logging.getLogger(__name__)

#: The schema this code writes (``PRAGMA user_version``); each entry of ``_MIGRATIONS`` takes a file
#: from its index to the next version.
SCHEMA_VERSION = 1
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        caller TEXT NOT NULL,
        participant TEXT,
        model TEXT NOT NULL,
        status INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        ttft REAL,
        duration REAL NOT NULL DEFAULT 0,
        queued REAL NOT NULL DEFAULT 0,
        task TEXT NOT NULL DEFAULT 'chat'
    );
    CREATE INDEX usage_at ON usage (at);
    CREATE INDEX usage_caller_at ON usage (caller, at);
    """,
)
_COLUMNS = tuple(f.name for f in fields(Usage))
_INSERT = f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
#: How long a statement waits for another connection's lock before giving up.
BUSY_TIMEOUT_S = 10.0
#: ``by=`` of :meth:`UsageStore.groups`: the column a report groups on.
GROUPS = {"caller": "caller", "model": "model"}


class UsageDbError(OpsError):
    """The usage file cannot be read: written by a newer ops, or not a usage database."""


@dataclass(frozen=True)
class Group:
    """What one caller asked of one model in a time range (the report adds these up and prices them)."""

    key: str
    model: str
    requests: int
    #: Answers with status 400 or more, except 429.
    errors: int
    #: Answers 429 (over quota, or the queue full).
    refused: int
    prompt_tokens: int
    completion_tokens: int


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the usage file at ``path`` (created 0600 when missing), its schema current."""
    private_dir(path.parent)
    # Created here, 0600, before SQLite opens it: SQLite gives its -wal and -shm files the mode
    # of the database file, so they are private too. Only when missing: closing a descriptor of a
    # file releases every POSIX lock this process holds on it, so opening and closing the file while
    # another connection of this process has it open (the store's writer, when its reader connects)
    # drops the writer's locks; a reader elsewhere then takes itself for the last connection,
    # checkpoints and deletes the WAL, and every later write goes to the deleted file.
    if not path.exists():
        os.close(open_private(path, os.O_RDWR))
    else:
        _make_private(path)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise UsageDbError(
            f"{path} is not a usage database ({exc})",
            hint="move it away, or restart the host (`ops restart PROFILE host`): it sets the file aside "
            "and starts a new one",
        ) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _make_private(path: Path) -> None:
    """chmod an older file (and its -wal, -shm) that is wider than 0600 and ours: by name, never opened."""
    if sys.platform == "win32":  # no POSIX modes: the folder's ACL keeps it private
        return
    for suffix in ("", "-wal", "-shm"):
        try:
            info = os.stat(f"{path}{suffix}")
            if info.st_uid == os.getuid() and info.st_mode & 0o077:
                os.chmod(f"{path}{suffix}", FILE_MODE)
        except OSError:  # absent, or not ours to change
            continue


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; another waits, then finds it done
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UsageDbError(
                f"{path} has usage schema {version}; this ops knows up to {SCHEMA_VERSION}",
                hint="a newer ops wrote it: use that version (this ops's host sets the file aside and "
                "starts a new one)",
            )
        for step in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class UsageStore:
    """The :class:`~ops.metering.Meter` that keeps usage records in SQLite; one per host process.

    Thread-safe; the queries read through their own connection, so they never wait for the writer.
    """

    def __init__(self, path: Path):
        self.path = path
        self._write = connect(path)
        self._read = connect(path)
        self._read_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Usage | threading.Event | None] = queue.SimpleQueue()
        #: Records that could not be written (the disk full, the file locked too long); logged too.
        self.dropped = 0
        self._closed = False
        self._writer = threading.Thread(target=self._drain, name="usage-writer", daemon=True)
        self._writer.start()

    # --- Meter ---------------------------------------------------------------------------------

    def record(self, usage: Usage) -> None:
        """Queue one finished request for the writer thread; returns at once."""
        if not self._closed:
            self._queue.put(usage)

    def inter_token(self, model: str, seconds: float) -> None:
        """Not stored (Prometheus' histogram has it)."""

    def queue_depth(self, model: str, waiting: int) -> None:
        """Not stored (Prometheus' gauge has it)."""

    def tokens_since(self, since: float) -> dict[str, list[tuple[float, int]]]:
        """Per caller, ``(at, prompt + completion tokens)`` of each request since ``since``, oldest first."""
        self.flush()
        windows: dict[str, list[tuple[float, int]]] = {}
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT caller, at, prompt_tokens + completion_tokens FROM usage WHERE at >= ? ORDER BY at",
                (since,),
            ).fetchall()
        for caller, at, tokens in rows:
            windows.setdefault(caller, []).append((at, tokens))
        return windows

    # --- Writing -------------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything recorded so far is written; False if that took over ``timeout``."""
        if self._closed:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        """Write what is queued, stop the writer and close the file (the host calls it on shutdown)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        self._write.close()
        with self._read_lock:
            self._read.close()

    def __enter__(self) -> UsageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drain(self) -> None:
        stop = False
        while not stop:
            batch: list[Usage] = []
            waiting: list[threading.Event] = []
            item = self._queue.get()
            while True:  # whatever queued up meanwhile goes into the same transaction
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiting.append(item)
                else:
                    batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._insert(batch)
            for event in waiting:
                event.set()

    def _insert(self, batch: Sequence[Usage]) -> None:
        try:
            self._write.execute("BEGIN")  # one transaction for the batch: one commit
            try:
                self._write.executemany(_INSERT, [astuple(u) for u in batch])
                self._write.execute("COMMIT")
            except BaseException:
                if self._write.in_transaction:
                    self._write.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            # The gateway must keep answering: the records are lost, and the log says how many.
            self.dropped += len(batch)
            log.error("usage: %d records not written to %s: %s", len(batch), self.path, exc)

    # --- Reading -------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            yield self._read

    def count(self) -> int:
        """How many requests are recorded (written ones; :meth:`flush` first to include queued ones)."""
        with self._reading() as conn:
            return int(conn.execute("SELECT count(*) FROM usage").fetchone()[0])

    def span(self) -> tuple[float, float] | None:
        """The first and last arrival recorded, or None when nothing is."""
        with self._reading() as conn:
            first, last = conn.execute("SELECT min(at), max(at) FROM usage").fetchone()
        return None if first is None else (first, last)

    def groups(self, by: str, since: float | None = None, until: float | None = None) -> list[Group]:
        """Requests, errors and tokens per ``by`` (``caller`` or ``model``) and model in ``[since, until)``."""
        column = GROUPS[by]
        where, args = _range(since, until)
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {column}, model, count(*),"
                " sum(status >= 400 AND status != 429), sum(status = 429),"
                " sum(prompt_tokens), sum(completion_tokens)"
                f" FROM usage {where} GROUP BY {column}, model ORDER BY {column}, model",
                args,
            ).fetchall()
        return [Group(*row) for row in rows]

    def ttfts(
        self, by: str, since: float | None = None, until: float | None = None
    ) -> dict[str, list[float]]:
        """Per ``by`` value, every time to first token (seconds) in ``[since, until)``, sorted."""
        column = GROUPS[by]
        where, args = _range(since, until, "ttft IS NOT NULL")
        found: dict[str, list[float]] = {}
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {column}, ttft FROM usage {where} ORDER BY ttft", args)
            for key, ttft in rows:
                found.setdefault(key, []).append(ttft)
        return found

    def timeline(
        self, start: float, width: float, since: float | None = None, until: float | None = None
    ) -> list[tuple[int, int, int]]:
        """``(bucket, requests, failed)`` per ``width``-second bucket from ``start`` (bucket 0) of the
        requests in ``[since, until)``, buckets with requests only; failed: every status of 400 or more."""
        where, args = _range(since, until)
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT CAST((at - ?) / ? AS INTEGER) AS bucket, count(*), sum(status >= 400)"
                f" FROM usage {where} GROUP BY bucket ORDER BY bucket",
                (start, width, *args),
            ).fetchall()
        return [(int(b), int(n), int(f)) for b, n, f in rows]


def open_or_set_aside(path: Path) -> UsageStore:
    """The store at ``path``; a file there that cannot be used is renamed ``<name>.<time>.unreadable``
    (its -wal and -shm likewise) and a new one started, so the gateway always records (for the host)."""
    try:
        return UsageStore(path)
    except UsageDbError as exc:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            old = path.with_name(path.name + suffix)
            if old.exists():
                old.rename(path.with_name(f"{path.name}.{stamp}.unreadable{suffix}"))
        log.warning("usage: %s; set aside as %s.%s.unreadable, starting a new one", exc, path.name, stamp)
        return UsageStore(path)


def open_existing(path: Path) -> UsageStore | None:
    """The store at ``path`` for reading, or None when the gateway never wrote one there."""
    if not path.is_file():
        return None
    return UsageStore(path)


@contextmanager
def reading(path: Path) -> Iterator[UsageStore | None]:
    """:func:`open_existing`, closed after the block."""
    store = open_existing(path)
    if store is None:
        yield None
        return
    with closing(store):
        yield store


def _range(since: float | None, until: float | None, *more: str) -> tuple[str, tuple[float, ...]]:
    terms, args = list(more), []
    if since is not None:
        terms.append("at >= ?")
        args.append(since)
    if until is not None:
        terms.append("at < ?")
        args.append(until)
    return ("WHERE " + " AND ".join(terms) if terms else ""), tuple(args)
