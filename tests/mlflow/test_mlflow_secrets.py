"""MLflow credentials stay out of every environment, child process and traceback.

They go to the server as a request header from inside trackstack's own calls
(``trackstack_mlflow.credentials``), never through ``MLFLOW_TRACKING_*``
variables that a process started meanwhile would inherit.
"""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from typing import Any

import pytest
from trackstack_mlflow.tracker import MLFlowExperimentTracker

from tests.mlflow.conftest import Servers, create_user
from tests.servers import free_port
from trackstack.delivery.sender_process import sender_process
from trackstack.errors import BackendUnavailableError, TrackstackError
from trackstack.registry import get_flavor
from trackstack.testing.leaks import descendants, process_texts, traceback_locals

CANARY = f"canary-{uuid.uuid4().hex}"


def tracker_for(uri: str, user: str, **config: Any) -> MLFlowExperimentTracker:
    # The user's own experiment: a new user may only read the others' (MLflow's default).
    built = get_flavor("mlflow").create(
        "mlflow", tracking_uri=uri, tracking_username=user, tracking_password=CANARY,
        experiment_name=f"{user}-runs", **config,
    )  # fmt: skip
    assert isinstance(built, MLFlowExperimentTracker)
    return built


def leaks(text: str, user: str) -> bool:
    basic = base64.b64encode(f"{user}:{CANARY}".encode()).decode()
    return CANARY in text or basic in text


def test_credentials_reach_no_environment_and_no_child_process(mlflow_servers: Servers) -> None:
    user = f"canary-user-{uuid.uuid4().hex[:8]}"
    create_user(mlflow_servers.basic_auth, user, CANARY)
    tracker = tracker_for(mlflow_servers.basic_auth.url, user)
    run = tracker.start_run()
    children_checked = 0
    # The first steps go out from a thread, before the sender process is up.
    for step in range(600):
        run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        if step % 100 == 0:
            run.flush()
            assert not leaks(str(os.environ), user)
            started = subprocess.run(["cat", "/proc/self/environ"], capture_output=True)
            assert not leaks(started.stdout.decode(errors="replace"), user)
            children_checked += 1
    assert sender_process().wait_ready(tracker, 120), "the sender process never answered"
    for step in range(600, 1200):
        run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    run.flush()
    helpers = descendants()
    assert sender_process().child_pid in helpers
    for pid in helpers:
        assert not leaks(process_texts(pid).decode(errors="replace"), user), pid
    run.end()
    assert not leaks(str(os.environ), user)
    found = tracker.get_run(run.id).metrics["loss"]
    print(f"logged 1200 / found {len(found)}; {children_checked} started processes and "
          f"{len(helpers)} helpers read")  # fmt: skip
    assert [p.step for p in found] == list(range(1200))


def test_no_traceback_holds_the_credentials_in_a_frame_local(mlflow_servers: Servers) -> None:
    user = f"canary-user-{uuid.uuid4().hex[:8]}"
    create_user(mlflow_servers.basic_auth, user, CANARY)
    tracker = tracker_for(mlflow_servers.basic_auth.url, user)
    with pytest.raises(TrackstackError) as missing:  # the server answers 403 for a run not seen
        tracker.get_run("0" * 32)
    down = tracker_for(f"http://127.0.0.1:{free_port()}", user, request_retries=0,
                       request_timeout=5)  # fmt: skip
    with pytest.raises(BackendUnavailableError) as unreachable:
        down.get_run("0" * 32)
    for raised in (missing.value, unreachable.value):
        leaked = [line for line in traceback_locals(raised) if leaks(line, user)]
        assert not leaked, leaked[:3]
