"""Damaged journals: every intact record is delivered, the damage is reported, sync never breaks.

Each journal is written by a real process that dies before delivering anything
(``os._exit``), then damaged on disk as a crash, a bad disk or a careless user
would: torn, bit-flipped, garbage inside, records out of order, the
acknowledgements torn, files replaced by nonsense.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import trackstack
from trackstack.delivery.codec import Frame, scan

STEPS = 3_000
DIES = """
import os, trackstack
tracker = trackstack.load_tracker({config!r})
tracker.flush_interval = 3600
run = tracker.start_run(experiment="damaged")
run.log_params({{"lr": 0.1}})
for step in range({steps}):
    run.log_metrics({{"a": step}}, step=step)
run.set_tags({{"stage": "late"}})
print(run.id, flush=True)
os._exit(0)
"""


def dead_journal(folder: Path) -> tuple[dict[str, Any], str, Path]:
    config = {"flavor": "local", "config": {"root": str(folder / "store")}}
    script = folder / "dies.py"
    script.write_text(DIES.format(config=config, steps=STEPS))
    done = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (journal,) = (folder / ".trackstack" / "journal").rglob("records")
    return config, done.stdout.strip(), journal.parent


def steps(folder: Path, run_id: str) -> Counter[int]:
    with sqlite3.connect(folder / "store" / "trackstack.db") as conn:
        rows = conn.execute("SELECT step FROM metrics WHERE run_id = ?", (run_id,)).fetchall()
    return Counter(int(step) for (step,) in rows)


def frames(data: bytes) -> list[Frame]:
    return [found for found in scan(data) if isinstance(found, Frame)]


def sync_all(folder: Path) -> trackstack.delivery.sync.SyncReport:
    return trackstack.sync(journal=folder / ".trackstack" / "journal")


def test_a_torn_last_record_loses_only_that_record(isolated_cwd: Path) -> None:
    config, run_id, journal = dead_journal(isolated_cwd)
    records = journal / "records"
    records.write_bytes(records.read_bytes()[:-7])
    report = sync_all(isolated_cwd)
    found = steps(isolated_cwd, run_id)
    print(f"logged {STEPS}, found {len(found)}, damaged {report.damaged}")
    assert set(found) == set(range(STEPS))  # the torn record was the tags
    assert max(found.values()) == 1
    (damaged,) = report.damaged
    assert damaged["records_lost"] == 1
    assert damaged["file"].endswith("records")
    record = trackstack.load_tracker(config).get_run(run_id)
    assert record.status.value == "KILLED"
    assert record.params == {"lr": "0.1"}


@pytest.mark.parametrize("how", ["bit-flip", "garbage-inside", "reordered", "garbage-only"])
def test_damage_inside_is_reported_and_every_intact_record_delivered(
    isolated_cwd: Path, how: str
) -> None:
    _, run_id, journal = dead_journal(isolated_cwd)
    # The writer's sender may have delivered the first points (they go with the params)
    # before it died: those are stored whatever happens to the journal afterwards.
    delivered_live = set(steps(isolated_cwd, run_id))
    records = journal / "records"
    data = bytearray(records.read_bytes())
    intact = frames(bytes(data))
    victim = intact[len(intact) // 2]
    expected = set(range(STEPS))
    if how == "bit-flip":
        data[victim.end - 3] ^= 0x10  # inside the value of one point
        expected.discard(victim.seq - 2)  # record 1 is the params, 2 the first point
    elif how == "garbage-inside":
        data[victim.offset : victim.offset] = random.Random(1).randbytes(500)
    elif how == "reordered":
        pieces = [bytes(data[f.offset : f.end]) for f in intact]
        random.Random(2).shuffle(pieces)
        data = bytearray(b"".join(pieces))
    else:
        data = bytearray(random.Random(3).randbytes(len(data)))
        expected = set()
    expected |= delivered_live
    records.write_bytes(bytes(data))
    report = sync_all(isolated_cwd)
    found = steps(isolated_cwd, run_id)
    print(f"{how}: logged {STEPS}, delivered live {len(delivered_live)}, "
          f"found {len(found)}, expected {len(expected)}, damaged {report.damaged}, "
          f"failed {report.failed}")  # fmt: skip
    assert set(found) == expected
    assert not found or max(found.values()) == 1
    if how != "reordered":
        assert report.damaged
    assert sync_all(isolated_cwd).runs == 0  # set aside under damaged/, not replayed


@pytest.mark.parametrize(
    "content", [b"123", b"", b"\xf3\x7a" * 50, json.dumps({"seq": "x"}).encode()]
)
def test_a_torn_or_nonsense_acks_file_only_means_replaying_idempotently(
    isolated_cwd: Path, content: bytes
) -> None:
    _, run_id, journal = dead_journal(isolated_cwd)
    (journal / "acks").write_bytes(content)
    (journal / "header.json").write_text("123")
    sync_all(isolated_cwd)
    found = steps(isolated_cwd, run_id)
    assert set(found) == set(range(STEPS))
    assert max(found.values()) == 1


def test_nonsense_files_in_the_journal_folder_never_break_sync(isolated_cwd: Path) -> None:
    _, run_id, journal = dead_journal(isolated_cwd)
    folder = journal.parent
    (folder / "stray.jsonl").write_text("123\n")
    (folder / "notes").mkdir()
    bogus = folder / "x.12345678"
    bogus.mkdir()
    (bogus / "lock").write_text("")
    (bogus / "records").write_bytes(b"123")
    other = folder.parent / "local-000000000000"
    other.mkdir()
    (other / "tracker.json").write_text("[1, 2]")
    report = sync_all(isolated_cwd)
    print(report)
    assert set(steps(isolated_cwd, run_id)) == set(range(STEPS))
    assert len(report.failed) >= 1
    assert all("error" in failure for failure in report.failed)


def test_two_syncs_at_once_deliver_each_point_once(isolated_cwd: Path) -> None:
    _, run_id, _journal = dead_journal(isolated_cwd)
    reports: list[object] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            reports.append(sync_all(isolated_cwd))
        except BaseException as error:
            errors.append(error)

    both = [threading.Thread(target=one) for _ in range(2)]
    for thread in both:
        thread.start()
    other = subprocess.Popen([sys.executable, "-m", "trackstack", "sync"], cwd=isolated_cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    for thread in both:
        thread.join(timeout=300)
    _out, err = other.communicate(timeout=300)
    assert not errors, errors
    assert other.returncode == 0, err
    found = steps(isolated_cwd, run_id)
    print(f"logged {STEPS}, found {len(found)}, duplicates {sum(found.values()) - len(found)}")
    assert set(found) == set(range(STEPS))
    assert max(found.values()) == 1
    with sqlite3.connect(isolated_cwd / "store" / "trackstack.db") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
