"""A training process logging to an MLflow server, killed with SIGKILL: nothing lost, run KILLED.

Counted with MLflow's own client, after `trackstack sync` run as a user would,
both before trackstack's sender process is up (batches go from a thread) and
after (batches go from the child, which dies with its parent's pipe).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.killing import count, kill_after, start_loop, sync_cli
from tests.mlflow.conftest import Servers

READY = "from trackstack.delivery.sender_process import sender_process\n" \
        "assert sender_process().wait_ready(tracker, 240)"  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "steps"), [("", 300), (READY, 3_000)], ids=["thread", "sender-process"]
)
def test_kill_9_over_http_loses_nothing_and_sync_ends_the_run_killed(
    mlflow_servers: Servers, isolated_cwd: Path, setup: str, steps: int
) -> None:
    url = mlflow_servers.sqlite.url
    config = {"flavor": "mlflow", "config": {"tracking_uri": url}}
    run_id, last = kill_after(start_loop(isolated_cwd, config, setup=setup), steps, steps)
    result = sync_cli(isolated_cwd)
    assert result.returncode == 0, result.stderr
    client = MlflowClient(url)
    history = [
        (key, metric.step)
        for key in ("a", "b")
        for metric in client.get_metric_history(run_id, key)
    ]
    report = count(run_id, last, history, client.get_run(run_id).info.status)
    print(report, "|", result.stdout.strip())
    assert (report.missing, report.duplicates, report.status) == (0, 0, "KILLED")
    assert "died" in client.get_run(run_id).data.tags["trackstack.recovery"]
