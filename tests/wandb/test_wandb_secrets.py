"""The W&B API key stays out of every environment, other trackers and tracebacks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from wandb.sdk.lib import wbauth

from tests.wandb.conftest import build
from tests.wandb.test_wandb_adapter import free_port
from trackstack.errors import AuthenticationError, BackendUnavailableError
from trackstack.testing.leaks import descendants, process_texts, traceback_locals

CANARY = "canaryWANDB" + "q" * 29  # W&B checks that keys have 40 characters


def test_the_key_reaches_no_environment_offline(tmp_path: Path) -> None:
    tracker = build(mode="offline", dir=tmp_path / "runs", api_key=CANARY)
    with tracker.start_run() as run:
        for step in range(50):
            run.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
            assert CANARY not in str(os.environ)
        started = subprocess.run(["cat", "/proc/self/environ"], capture_output=True, check=True)
        assert CANARY.encode() not in started.stdout
        helpers = descendants()
        print(f"processes below the training process: {len(helpers)}")
        assert helpers, "wandb-core should be running"
        for pid in helpers:
            assert CANARY.encode() not in process_texts(pid), f"the key is readable in {pid}"
    assert len(tracker.get_run(run.id).metrics["loss"]) == 50


def test_a_key_given_to_one_tracker_is_not_used_by_the_next_or_left_in_tracebacks(
    tmp_path: Path,
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    keyed = build(mode="online", dir=tmp_path / "runs", api_key=CANARY, base_url=base_url,
                  init_timeout=3)  # fmt: skip
    keyed.start_offline = False
    with pytest.raises(BackendUnavailableError) as raised:
        keyed.start_run()
    leaked = [line for line in traceback_locals(raised.value) if CANARY in line]
    assert not leaked, leaked
    assert CANARY not in str(os.environ)
    assert wbauth.session_credentials(host=wbauth.HostUrl(base_url)) is None
    keyless = build(mode="online", dir=tmp_path / "runs", base_url=base_url, init_timeout=3)
    keyless.start_offline = False
    with pytest.raises(AuthenticationError, match="api_key"):
        keyless.start_run()
