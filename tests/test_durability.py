"""Nothing whose call returned is lost to a killed process, and nothing is stored twice.

Real processes, killed with SIGKILL at a random moment, the local store read
directly (its own table), and ``trackstack sync`` run as a user would.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import trackstack
from tests.killing import count, kill_after, start_loop, sync_cli


def stored(database: Path, run_id: str) -> list[tuple[str, int]]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT key, step FROM metrics WHERE run_id = ?", (run_id,))
        return [(str(key), int(step)) for key, step in rows]


def status(database: Path, run_id: str) -> str:
    with sqlite3.connect(database) as conn:
        return str(conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_loses_nothing_and_sync_ends_the_run_killed(isolated_cwd: Path, seed: int) -> None:
    config = {"flavor": "local", "config": {"root": str(isolated_cwd / "store")}}
    process = start_loop(isolated_cwd, config)
    run_id, last = kill_after(process, 2_000 * seed, seed)
    result = sync_cli(isolated_cwd)
    assert result.returncode == 0, result.stderr
    database = isolated_cwd / "store" / "trackstack.db"
    report = count(run_id, last, stored(database, run_id), status(database, run_id))
    print(report, "|", result.stdout.strip())
    assert (report.missing, report.duplicates, report.status) == (0, 0, "KILLED")
    assert "recovered" in result.stdout
    again = sync_cli(isolated_cwd, "--json")
    assert '"runs": 0' in again.stdout, again.stdout
    tags = trackstack.load_tracker(config).get_run(run_id).tags
    assert "died" in tags["trackstack.recovery"]


def test_the_next_run_recovers_a_killed_run_in_the_background(isolated_cwd: Path) -> None:
    config = {"flavor": "local", "config": {"root": str(isolated_cwd / "store")}}
    run_id, last = kill_after(start_loop(isolated_cwd, config), 500, 7)
    tracker = trackstack.load_tracker(config)
    with tracker.start_run(experiment="next") as run:
        run.log_metrics({"x": 1.0})
    database = isolated_cwd / "store" / "trackstack.db"
    # The recovery thread holds the journal's lock while it delivers; sync waits for it.
    result = sync_cli(isolated_cwd, "--json")
    assert result.returncode == 0, result.stderr
    report = count(run_id, last, stored(database, run_id), status(database, run_id))
    print(report)
    assert (report.missing, report.duplicates, report.status) == (0, 0, "KILLED")
