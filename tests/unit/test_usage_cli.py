"""``ops usage``: exit codes, the key lines of each output, and one-line errors for bad input."""

from __future__ import annotations

import csv
import io
import json
import stat
import time

import pytest

from ops.cli import main
from ops.metering import Usage
from ops.metering.store import UsageStore
from ops.state import StackState

PROFILE = """\
name: usage-room
models:
  tiny: {path: "bundled:tiny-int4"}
  cloud: {url: "https://api.example.com/v1", model: gpt-x, price: {input: 2.5, output: 10, currency: EUR}}
"""


def run(capsys, *args):
    code = main(["usage", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "room.yaml"
    path.write_text(PROFILE)
    return str(path)


def fill(records):
    with UsageStore(StackState.for_stack("usage-room").ensure().usage_db) as store:
        for record in records:
            store.record(record)


@pytest.fixture
def used(profile):
    now = time.time()
    fill(
        [
            Usage(now - 7200, "participant:ann", "ann", "cloud", 200, 100_000, 20_000, ttft=0.4),
            Usage(now - 600, "participant:ann", "ann", "tiny", 200, 300, 100, ttft=0.2),
            Usage(now - 500, "participant:bob", "bob", "tiny", 429),
            Usage(now - 400, "participant:bob", "bob", "tiny", 200, 50, 25, ttft=0.3),
            Usage(now - 300, "user:carol@example.org", None, "tiny", 502),
        ]
    )
    return profile


def test_tables_per_caller_and_model(capsys, used):
    code, out, _ = run(capsys, used)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("usage of stack usage-room from the first request to ")
    assert lines[0].endswith(": 5 requests")
    row = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    # requests, errors, 429, tokens in, tokens out, TTFT p50, TTFT p95, cost
    assert row["participant:ann"] == ["2", "0", "0", "100,300", "20,100", "200", "400", "0.4500", "EUR"]
    assert row["participant:bob"] == ["2", "0", "1", "50", "25", "300", "300", "—"]
    assert row["user:carol@example.org"] == ["1", "1", "0", "0", "0", "-", "-", "—"]
    assert row["cloud"] == ["1", "0", "0", "100,000", "20,000", "400", "400", "0.4500", "EUR"]
    assert row["tiny"][:3] == ["4", "1", "1"]
    assert "caller" in row and "model" in row and out.count("total") == 2


def test_since_and_by(capsys, used):
    code, out, _ = run(capsys, used, "--since", "1h", "--by", "model")
    assert code == 0
    assert "caller" not in out and "participant:ann" not in out
    assert ": 4 requests" in out.splitlines()[0]
    assert "cloud" not in out  # its request was two hours ago


def test_json(capsys, used):
    code, out, _ = run(capsys, used, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["stack"] == "usage-room" and data["total"]["requests"] == 5
    ann = next(r for r in data["callers"] if r["name"] == "participant:ann")
    assert ann["cost"] == {"EUR": pytest.approx(0.45)} and ann["ttft_p95_ms"] == pytest.approx(400)
    assert next(r for r in data["models"] if r["name"] == "tiny")["cost"] is None


def test_csv(capsys, used):
    code, out, _ = run(capsys, used, "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["by"] for r in rows} == {"participant", "model", "total"}
    ann = next(r for r in rows if r["name"] == "participant:ann")
    assert (ann["requests"], ann["prompt_tokens"], ann["cost"], ann["currency"]) == (
        "2",
        "100300",
        "0.450000",
        "EUR",
    )
    bob = next(r for r in rows if r["name"] == "participant:bob")
    assert (bob["refused"], bob["cost"], bob["currency"]) == ("1", "", "")


def test_html(capsys, used, tmp_path):
    target = tmp_path / "usage.html"
    code, out, err = run(capsys, used, "--html", str(target))
    assert code == 0 and f"report written to {target}" in err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    page = target.read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2 and "participant:bob" in page
    assert "usage of stack usage-room" in out  # the tables are still printed


def test_an_empty_store_says_so_and_succeeds(capsys, profile):
    fill([])
    code, out, _ = run(capsys, profile)
    assert code == 0
    assert out.startswith("no usage recorded yet for stack usage-room")


def test_nothing_in_the_range_says_what_came_before(capsys, used):
    code, out, _ = run(capsys, used, "--since", "1m")
    assert code == 0 and "no usage of stack usage-room since" in out and "(5 requests before)" in out


def test_a_stack_that_never_ran_is_an_error_with_a_hint(capsys, profile):
    code, out, err = run(capsys, profile)
    assert code == 2 and out == ""
    assert "error: stack usage-room has no usage records: its gateway has not run" in err
    assert f"hint: `ops up {profile}` starts it" in err
    assert not StackState.for_stack("usage-room").usage_db.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "--since 'yesterday' is neither a duration nor a date"),
        (("--since", "2999-01-01"), "--since '2999-01-01' is in the future"),
        (("--by", "user"), "--by 'user' is not a grouping"),
        (("--json", "--csv"), "--json and --csv exclude each other"),
        (
            ("--html", "/nonexistent/dir/usage.html"),
            "cannot write /nonexistent/dir/usage.html: folder /nonexistent/dir does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_with_a_hint(capsys, used, args, message):
    code, out, err = run(capsys, used, *args)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"error: {message}" and lines[1].startswith("hint: ") and len(lines) == 2


def test_an_unknown_profile_is_a_usage_error(capsys):
    code, _, err = run(capsys, "no-such-profile")
    assert code == 2 and err.startswith("error: ") and "hint: " in err


def test_a_usage_file_that_is_no_database_is_one_line_with_a_hint(capsys, profile):
    path = StackState.for_stack("usage-room").ensure().usage_db
    path.write_bytes(b"garbage" * 1000)
    code, out, err = run(capsys, profile)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {path} is not a usage database") and "hint: move it away" in err
