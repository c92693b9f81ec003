"""Metric batches stored by the sender process: what it sends, its crashes, errors and end."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from mlflow import MlflowClient
from trackstack_mlflow.tracker import MLFlowExperimentTracker

import trackstack
from trackstack import MetricPoint
from trackstack.delivery.sender_process import close_sender_process, sender_process
from trackstack.errors import BackendError
from trackstack.experiment_trackers import BaseExperimentTracker

READY_SECONDS = 120  # the child imports MLflow: seconds here, more on a loaded machine


def ready_tracker(uri: str) -> BaseExperimentTracker:
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": uri}})
    tracker.flush_interval, tracker.retry_initial = 0.2, 0.1
    assert sender_process().wait_ready(tracker, READY_SECONDS), "the sender process never answered"
    return tracker


def count_in_process_batches(tracker: BaseExperimentTracker) -> list[int]:
    """Batch sizes the tracker sends from this process from now on."""
    sizes: list[int] = []
    send_here = tracker.backend_log_metrics

    def counted(run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        sizes.append(len(points))
        send_here(run_id, points)

    tracker.backend_log_metrics = counted  # type: ignore[method-assign]
    return sizes


def steps_stored(uri: str, run_id: str, key: str) -> Counter[int]:
    return Counter(m.step for m in MlflowClient(uri).get_metric_history(run_id, key))


def child_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    # A zombie has exited; only its parent's wait() is missing.
    return "State:\tZ" not in status


def test_batches_are_stored_by_a_child_process_once_it_is_ready(sqlite_uri: str) -> None:
    tracker = ready_tracker(sqlite_uri)
    in_process = count_in_process_batches(tracker)
    with tracker.start_run() as run:
        for step in range(5_000):
            run.log_metrics({"loss": 1 / (step + 1), "step_seen": step}, step=step)
    assert in_process == []
    child = sender_process().child_pid
    assert child is not None
    assert child != os.getpid()
    history = tracker.get_run(run.id).metrics
    assert [p.step for p in history["loss"]] == list(range(5_000))
    assert [p.value for p in history["step_seen"]] == [float(s) for s in range(5_000)]


def test_a_killed_sender_process_loses_and_repeats_nothing(sqlite_uri: str) -> None:
    tracker = ready_tracker(sqlite_uri)
    first = sender_process().child_pid
    assert first is not None
    with tracker.start_run() as run:
        for step in range(6_000):
            run.log_metrics({"loss": step / 7}, step=step)
            if step == 2_000:
                os.kill(first, signal.SIGKILL)
            if step % 500 == 0:
                time.sleep(0.05)  # lets the sender send while the loop goes on
    stored = steps_stored(sqlite_uri, run.id, "loss")
    assert sorted(stored) == list(range(6_000))
    assert set(stored.values()) == {1}
    assert sender_process().wait_ready(tracker, READY_SECONDS)
    assert sender_process().child_pid not in (None, first)


def test_a_refusal_in_the_child_reaches_the_loop_and_the_point_is_kept_aside(
    sqlite_uri: str, isolated_cwd: Path
) -> None:
    tracker = ready_tracker(sqlite_uri)
    run = tracker.start_run()
    run.log_metrics({"loss": 1.0}, step=0)
    run.flush()
    MlflowClient(sqlite_uri).delete_run(run.id)
    run.log_metrics({"loss": 2.0}, step=1)
    with pytest.raises(BackendError, match=r"refused metric 'loss'.*must be in the 'active'"):
        run.flush()
    assert run.buffered_points == 0
    (refused,) = (isolated_cwd / ".trackstack" / "journal").rglob("refused/*.jsonl")
    assert '"loss", 1, 2.0' in refused.read_text()
    MlflowClient(sqlite_uri).restore_run(run.id)
    run.log_metrics({"loss": 3.0}, step=2)
    run.end()
    assert sorted(steps_stored(sqlite_uri, run.id, "loss")) == [0, 2]


def test_a_tracker_the_child_cannot_build_sends_from_this_process(
    sqlite_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    class DefinedInAFunction(MLFlowExperimentTracker):
        """Pickle finds no module path for it, so the child cannot build it."""

    model = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": sqlite_uri}})
    tracker = DefinedInAFunction(**model.identity())
    in_process = count_in_process_batches(tracker)
    with caplog.at_level(logging.WARNING, logger="trackstack"):
        assert not sender_process().wait_ready(tracker, READY_SECONDS)
        with tracker.start_run() as run:
            run.log_metrics({"loss": 0.5}, step=0)
    assert in_process == [1]
    assert sorted(steps_stored(sqlite_uri, run.id, "loss")) == [0]
    assert "sender process cannot send for the mlflow tracker" in caplog.text


def test_send_from_process_off_keeps_the_thread(sqlite_uri: str) -> None:
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": sqlite_uri}})
    tracker.send_from_process = False
    in_process = count_in_process_batches(tracker)
    with tracker.start_run() as run:
        run.log_metrics({"loss": 0.5}, step=0)
    assert in_process == [1]


TRAINING = """
import faulthandler, signal, sys, time
import trackstack

faulthandler.dump_traceback_later(100)  # where it waits, should it outlive the test's wait
# Ctrl-C raises KeyboardInterrupt in a program started from a terminal; one started by a
# background job (CI run as `ci &`) inherits SIGINT ignored, and would sleep through it.
signal.signal(signal.SIGINT, signal.default_int_handler)
from trackstack.delivery.sender_process import close_sender_process, sender_process

tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": sys.argv[1]}})
run = tracker.start_run()
assert sender_process().wait_ready(tracker, 120)
for step in range(3_000):
    run.log_metrics({"loss": step / 3}, step=step)
print(run.id, sender_process().child_pid, flush=True)
if sys.argv[2] == "hang":
    time.sleep(600)
# "exit": leaves without end(); the points go out at interpreter exit
"""


def start_training(uri: str, how: str, tmp_path: Path) -> tuple[subprocess.Popen[str], str, int]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(TRAINING))
    process = subprocess.Popen(
        [sys.executable, str(script), uri, how],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a program started from a shell
    )
    assert process.stdout is not None
    run_id, child = process.stdout.readline().split()
    process.stdout.close()  # the one line it prints
    return process, run_id, int(child)


def wait_for_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while child_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_program_that_exits_gets_its_points_stored_and_its_child_ends(
    sqlite_uri: str, tmp_path: Path
) -> None:
    process, run_id, child = start_training(sqlite_uri, "exit", tmp_path)
    assert process.wait(timeout=120) == 0
    assert wait_for_exit(child, 10)
    assert sorted(steps_stored(sqlite_uri, run_id, "loss")) == list(range(3_000))


def test_the_child_does_not_outlive_a_killed_program(sqlite_uri: str, tmp_path: Path) -> None:
    process, _, child = start_training(sqlite_uri, "hang", tmp_path)
    process.kill()
    process.wait(timeout=30)
    assert wait_for_exit(child, 10)


def test_ctrl_c_to_the_process_group_leaves_the_child_to_send_the_rest(
    sqlite_uri: str, tmp_path: Path
) -> None:
    # A terminal's Ctrl-C reaches every process of the foreground group, the child too.
    process, run_id, child = start_training(sqlite_uri, "hang", tmp_path)
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=120) == -signal.SIGINT
    assert wait_for_exit(child, 10)
    assert sorted(steps_stored(sqlite_uri, run_id, "loss")) == list(range(3_000))
    assert MlflowClient(sqlite_uri).get_run(run_id).info.status == "KILLED"


def test_a_short_script_never_starts_the_sender_process(sqlite_uri: str) -> None:
    tracker = trackstack.load_tracker({"flavor": "mlflow", "config": {"tracking_uri": sqlite_uri}})
    close_sender_process()
    with tracker.start_run() as run:
        for step in range(200):
            run.log_metrics({"loss": 1.0, "acc": 0.5, "lr": 0.1, "gn": 2.0}, step=step)
    assert sender_process().child_pid is None
    tracker.sender_process_after = 1_000
    with tracker.start_run() as busy:
        for step in range(2_000):
            busy.log_metrics({"loss": 1.0, "acc": 0.5, "lr": 0.1, "gn": 2.0}, step=step)
        assert sender_process().wait_ready(tracker, READY_SECONDS)
        before = sender_process().batches_stored
        for step in range(2_000, 4_000):
            busy.log_metrics({"loss": 1.0, "acc": 0.5, "lr": 0.1, "gn": 2.0}, step=step)
        busy.flush()
        assert sender_process().batches_stored > before
    assert [p.step for p in tracker.get_run(busy.id).metrics["loss"]] == list(range(4_000))
