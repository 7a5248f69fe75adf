"""The usage store: records kept in SQLite, totals and windows read back, across a restart, privately."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

from ops.metering.store import SCHEMA_VERSION, UsageDbError, UsageStore, open_or_set_aside, reading
from ops.state import StackState

from .usagefakes import NOW, usage


@pytest.fixture
def path(tmp_path):
    return StackState.for_stack("metered").ensure().usage_db


@pytest.fixture
def store(path):
    with UsageStore(path) as s:
        yield s


def test_records_are_written_and_read_back_as_they_were(store):
    store.record(usage())
    store.record(usage(caller="admin", model="big", status=500, prompt=0, completion=0, ttft=None))
    assert store.flush()
    assert store.count() == 2
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute(
            "SELECT caller, participant, model, status, ttft, task FROM usage ORDER BY id"
        ).fetchall()
    assert rows == [
        ("participant:ann", "ann", "tiny", 200, 0.1, "chat"),
        ("admin", None, "big", 500, None, "chat"),
    ]


def test_groups_count_requests_errors_refusals_and_tokens_per_caller_and_model(store):
    for record in (
        usage(prompt=10, completion=5),
        usage(prompt=20, completion=7),
        usage(status=429, prompt=0, completion=0, ttft=None),
        usage(status=500, prompt=0, completion=0, ttft=None),
        usage(status=499, prompt=3, completion=1),
        usage(model="big", prompt=100, completion=50),
        usage(caller="participant:bob", prompt=1, completion=1),
    ):
        store.record(record)
    store.flush()
    by_caller = {(g.key, g.model): g for g in store.groups("caller")}
    ann = by_caller[("participant:ann", "tiny")]
    assert (ann.requests, ann.errors, ann.refused) == (5, 2, 1)  # 429 is no error: it is counted apart
    assert (ann.prompt_tokens, ann.completion_tokens) == (33, 13)
    assert by_caller[("participant:ann", "big")].prompt_tokens == 100
    assert by_caller[("participant:bob", "tiny")].requests == 1
    by_model = {(g.key, g.model): g.requests for g in store.groups("model")}
    assert by_model == {("big", "big"): 1, ("tiny", "tiny"): 6}


def test_time_ranges_and_ttfts(store):
    for i in range(10):
        store.record(usage(at=NOW + i * 60, ttft=0.1 * (10 - i)))
    store.record(usage(at=NOW + 30, ttft=None, status=429))
    store.flush()
    assert sum(g.requests for g in store.groups("caller", since=NOW + 300)) == 5
    assert sum(g.requests for g in store.groups("caller", since=NOW, until=NOW + 120)) == 3
    ttfts = store.ttfts("caller", since=NOW + 300)["participant:ann"]
    assert ttfts == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])  # sorted, no None
    assert store.span() == (NOW, NOW + 540)
    # Bucket 0 starts at NOW; 5-minute buckets: 0-4 min and the 429 in bucket 0, 5-9 min in bucket 1.
    assert store.timeline(NOW, 300) == [(0, 6, 1), (1, 5, 0)]


def test_tokens_since_gives_each_callers_window_oldest_first_including_what_is_still_queued(store):
    store.record(usage(at=NOW - 7200, prompt=1000))
    store.record(usage(at=NOW - 60, prompt=10, completion=5))
    store.record(usage(at=NOW - 30, caller="participant:bob", prompt=1, completion=1))
    store.record(usage(at=NOW - 10, prompt=20, completion=0))
    # No flush: tokens_since waits for the writer itself.
    assert store.tokens_since(NOW - 3600) == {
        "participant:ann": [(NOW - 60, 15), (NOW - 10, 20)],
        "participant:bob": [(NOW - 30, 2)],
    }


def test_counts_survive_a_restart(path):
    first = UsageStore(path)
    for i in range(50):
        first.record(usage(at=NOW + i))
    first.close()  # the host's shutdown: what is queued is written
    second = UsageStore(path)
    try:
        assert second.count() == 50
        assert second.tokens_since(NOW + 40) == {"participant:ann": [(NOW + i, 15) for i in range(40, 50)]}
        second.record(usage(at=NOW + 100))
        second.flush()
        assert second.count() == 51
    finally:
        second.close()


def test_the_file_and_its_wal_are_private_and_in_wal_mode(path):
    with UsageStore(path) as s:
        s.record(usage())
        s.flush()
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            mode = stat.S_IMODE((path.parent / name).stat().st_mode)
            assert mode == 0o600, f"{name} is {oct(mode)}"
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_older_wider_file_is_made_private(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o644)
    path.chmod(0o644)
    with UsageStore(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_concurrent_writers_in_threads_and_another_process_lose_nothing(path):
    store = UsageStore(path)
    other = UsageStore(path)  # a second host process would have its own connections
    script = (
        "import sys; from pathlib import Path; from ops.metering import Usage; "
        "from ops.metering.store import UsageStore\n"
        "s = UsageStore(Path(sys.argv[1]))\n"
        "for i in range(300): s.record(Usage(at=float(i), caller='service:x', participant=None, model='m', status=200))\n"
        "s.close()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(path)])

    def write(target, caller):
        for i in range(250):
            target.record(usage(caller=caller, at=NOW + i))

    threads = [
        threading.Thread(target=write, args=(s, f"participant:p{n}"))
        for n, s in enumerate([store, other] * 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert child.wait(timeout=60) == 0
    other.close()
    store.flush()
    assert store.dropped == other.dropped == 0
    assert store.count() == 4 * 250 + 300
    assert {g.key: g.requests for g in store.groups("caller")} == {
        "participant:p0": 250,
        "participant:p1": 250,
        "participant:p2": 250,
        "participant:p3": 250,
        "service:x": 300,
    }
    store.close()


def test_record_returns_at_once_while_another_connection_holds_the_write_lock(path):
    store = UsageStore(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # what a long checkpoint or another writer would do
    try:
        started = time.perf_counter()
        for i in range(200):
            store.record(usage(at=NOW + i))
        elapsed = time.perf_counter() - started
        assert elapsed < 0.05, f"200 records took {elapsed * 1000:.1f} ms with the file locked"
        assert store.count() == 0  # nothing could be written yet
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.flush()
    assert store.count() == 200
    store.close()


def test_a_file_from_a_newer_ops_is_refused_with_a_hint(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(UsageDbError, match="usage schema 2") as caught:
        UsageStore(path)
    assert "newer ops" in caught.value.hint


def test_a_file_that_is_no_database_is_refused_with_a_hint(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(UsageDbError, match="is not a usage database") as caught:
        UsageStore(path)
    assert "move it away" in caught.value.hint


def test_reading_a_stack_that_never_recorded_creates_nothing(path):
    with reading(path) as found:
        assert found is None
    assert not path.exists()


def test_a_failed_write_is_counted_and_the_writer_keeps_going(path, caplog):
    store = UsageStore(path)
    store.record(usage())
    store.flush()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON usage WHEN NEW.model = 'bad' BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    store.record(usage(model="bad"))
    store.flush()
    store.record(usage(model="good"))
    store.flush()
    assert store.dropped == 1 and "1 records not written" in caplog.text
    assert {g.key for g in store.groups("model")} == {"tiny", "good"}
    store.close()


def test_the_host_sets_an_unusable_file_aside_and_starts_a_new_one(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not SQLite" * 100)
    with open_or_set_aside(path) as store:
        store.record(usage())
        store.flush()
        assert store.count() == 1
    aside = list(path.parent.glob("usage.sqlite.*.unreadable"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"this is not SQLite" * 100


def test_a_reader_in_another_process_never_takes_the_wal_from_the_running_host(path):
    """The host's store keeps its file's locks while a second connection of it opens the file, so a
    reader elsewhere (``ops usage``) that closes never thinks itself the last one, checkpoints and
    deletes the WAL under the host (whose later records would then go to a deleted file)."""
    store = UsageStore(path)
    try:
        store.record(usage(at=NOW))
        store.flush()
        store.count()  # the reader connection of the host is open too
        reader = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT count(*) FROM usage'); c.close()"
        subprocess.run([sys.executable, "-c", reader, str(path)], check=True)
        assert (path.parent / f"{path.name}-wal").exists(), "the reader took the host's WAL away"
        for i in range(1, 10):
            store.record(usage(at=NOW + i))
        store.flush()
        count = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM usage').fetchone()[0])"
        seen = subprocess.run(
            [sys.executable, "-c", count, str(path)], check=True, capture_output=True, text=True
        )
        assert seen.stdout.strip() == "10"
    finally:
        store.close()
