"""Server crashes during a run: points logged, points MLflow's own client finds, duplicates.

A run logs 5,000 steps x 4 metrics through trackstack into a local ``mlflow
server`` on PostgreSQL while the server is killed (SIGKILL) and restarted twice.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from tests.mlflow.faults import log_through_restarts
from tests.servers import MlflowServer, PostgresCluster


def run() -> dict[str, Any]:
    """The fault report of one run through two crashes, as a dict."""
    cluster = PostgresCluster()
    server = None
    try:
        store = cluster.create_database("faults")
        folder = Path(tempfile.mkdtemp(prefix="trackstack-faults-"))
        server = MlflowServer(folder, store).wait_until_healthy()
        report, server = log_through_restarts(server)
        return dataclasses.asdict(report)
    finally:
        if server is not None:
            server.stop()
        cluster.stop()
