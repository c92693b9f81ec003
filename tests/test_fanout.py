"""Fan-out: one run to several trackers, checked once, each member failing alone.

The members here are local stores, one of them made to go down or to refuse a
key as a server would (a local store of its own cannot be taken down); the
same with a real ``mlflow server`` killed and restarted is in
``tests/mlflow/test_mlflow_fanout.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import trackstack
from tests.test_cli import cli
from trackstack.backend import RunStart, StartedRun
from trackstack.errors import BackendError, BackendUnavailableError, InvalidInputError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.fanout import RUN_ID_TAG, FanOutTracker, fan_out
from trackstack.local import LocalExperimentTrackerFlavor
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.records import MetricPoint, RunRecord
from trackstack.registry import get_flavor
from trackstack.stack import StackComponent
from trackstack.testing import LocalStoreReader, RunReader, TrackerConformance
from trackstack.testing.readers import FanOutReader
from trackstack.validation import ParamValue


def local(root: Path, name: str) -> LocalExperimentTracker:
    built = get_flavor("local").create(name, root=root)
    assert isinstance(built, LocalExperimentTracker)
    return built


class TestFanOutConformance(TrackerConformance):
    @pytest.fixture
    def tracker(self, tmp_path: Path) -> BaseExperimentTracker:
        return fan_out([local(tmp_path / "a", "a"), local(tmp_path / "b", "b")])

    @pytest.fixture
    def reader(self, tracker: FanOutTracker) -> RunReader:
        first = tracker.trackers[0]
        assert isinstance(first, LocalExperimentTracker)
        return FanOutReader(first, LocalStoreReader(first.config.root))


class TroubledTracker(LocalExperimentTracker):
    """A local store that can be down (every call unavailable) or refuse one metric key."""

    down = False
    refused_key = "refused"

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailableError("the troubled store is down")

    def backend_start_run(self, request: RunStart) -> StartedRun:
        self._check()
        return super().backend_start_run(request)

    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        self._check()
        if any(key == self.refused_key for key, _ in points):
            raise BackendError(f"the troubled store refuses metric {self.refused_key!r}")
        super().backend_log_metrics(run_id, points)

    def backend_log_params(self, run_id: str, params: Mapping[str, ParamValue]) -> None:
        self._check()
        super().backend_log_params(run_id, params)

    def backend_set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._check()
        super().backend_set_tags(run_id, tags)

    def backend_end_run(self, run_id: str, status: Any) -> None:
        self._check()
        super().backend_end_run(run_id, status)

    def backend_get_run(self, run_id: str) -> RunRecord:
        self._check()
        return super().backend_get_run(run_id)

    def backend_list_runs(self, experiment: str | None) -> list[RunRecord]:
        self._check()
        return super().backend_list_runs(experiment)


class TroubledFlavor(LocalExperimentTrackerFlavor):
    @property
    def name(self) -> str:
        return "troubled"

    @property
    def implementation_class(self) -> type[StackComponent]:
        return TroubledTracker


def pair(tmp_path: Path) -> tuple[FanOutTracker, LocalExperimentTracker, TroubledTracker]:
    healthy = local(tmp_path / "healthy", "healthy")
    troubled = TroubledFlavor().create("troubled", root=tmp_path / "troubled")
    assert isinstance(troubled, TroubledTracker)
    fan = fan_out([healthy, troubled])
    fan.retry_initial, fan.end_timeout = 0.05, 0.5
    return fan, healthy, troubled


def test_a_member_down_for_the_whole_run_never_troubles_the_loop_and_gets_it_all_from_sync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fan, healthy, troubled = pair(tmp_path)
    troubled.down = True
    with fan.start_run(experiment="outage") as run:
        run.log_params({"lr": 0.1})
        for step in range(5_000):
            run.log_metrics({"loss": 1 / (step + 1), "acc": step / 5_000}, step=step)
        run.set_tags({"stage": "dev"})
    (record,) = healthy.list_runs(experiment="outage")
    assert [p.step for p in record.metrics["loss"]] == list(range(5_000))
    assert record.tags[RUN_ID_TAG] == run.id
    assert run.ids["troubled"].startswith("pending-")  # started while it was down
    troubled.down = False
    report = trackstack.sync(fan)
    print(f"synced to the member that was down: {report.points} points, started {report.started}")
    assert report.points == 10_000
    verified = fan.verify(run.id)
    assert verified.agree, verified.differences
    assert fan.get_run(run.id).params == {"lr": "0.1"}


def test_a_member_that_refuses_a_key_is_reported_at_the_end_and_the_rest_is_everywhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fan, _, _ = pair(tmp_path)
    run = fan.start_run(experiment="refusal")
    for step in range(1_000):
        run.log_metrics({"loss": float(step), "refused": 1.0} if step == 500 else {"loss": 1.0})
        run.flush() if step % 250 == 0 else None
    with pytest.raises(BackendError, match=r"troubled: .*refused metric 'refused'"):
        run.end()
    held = {m.name: m.get_run(run.ids[m.name]) for m in fan.trackers}
    assert len(held["troubled"].metrics["loss"]) == 1_000
    assert [p.value for p in held["healthy"].metrics["refused"]] == [1.0]
    assert "refused" not in held["troubled"].metrics
    verified = fan.verify(run.id)
    assert not verified.agree
    assert any("metric 'refused'" in d for d in verified.differences), verified.differences


def test_calls_are_checked_once_against_the_strictest_member(tmp_path: Path) -> None:
    fan, _, _ = pair(tmp_path)
    with fan.start_run() as run:
        with pytest.raises(InvalidInputError, match=r"trackstack\.run_id"):
            run.set_tags({RUN_ID_TAG: "mine"})
        with pytest.raises(InvalidInputError, match="path-like"):
            run.log_metrics({"../x": 1.0})
        run.log_metrics({"ok": 1.0})
    assert fan.verify(run.id).agree


def test_a_config_names_several_trackers(isolated_cwd: Path) -> None:
    path = isolated_cwd / "trackstack.yaml"
    path.write_text(
        "experiment_trackers:\n"
        "  - flavor: local\n    name: first\n    config:\n      root: one\n"
        "  - flavor: local\n    name: second\n    config:\n      root: two\n"
    )
    tracker = trackstack.load_tracker()
    assert isinstance(tracker, FanOutTracker)
    assert [m.name for m in tracker.trackers] == ["first", "second"]
    with tracker.start_run(experiment="configured") as run:
        run.log_metrics({"m": 1.0})
    assert (isolated_cwd / "one" / "trackstack.db").is_file()
    assert (isolated_cwd / "two" / "trackstack.db").is_file()
    assert set(run.ids) == {"first", "second"}
    listed = json.loads(cli("runs", "list", "--json", cwd=isolated_cwd).stdout)
    assert [row["id"] for row in listed] == [run.id]
    verified = cli("runs", "verify", run.id, cwd=isolated_cwd)
    assert verified.returncode == 0, verified.stderr
    assert "first, second agree" in verified.stdout
    assert cli("config", "validate", "trackstack.yaml", cwd=isolated_cwd).returncode == 0
    shown = cli("config", "show", cwd=isolated_cwd)
    assert "member 2: flavor local, name second" in shown.stdout
    assert "fanout" in cli("flavors", cwd=isolated_cwd).stdout


def test_verify_names_what_differs_and_exits_1(isolated_cwd: Path) -> None:
    path = isolated_cwd / "fan.yaml"
    path.write_text(
        "experiment_trackers:\n"
        "  - flavor: local\n    name: first\n    config:\n      root: one\n"
        "  - flavor: local\n    name: second\n    config:\n      root: two\n"
    )
    tracker = trackstack.load_tracker(path)
    assert isinstance(tracker, FanOutTracker)
    with tracker.start_run() as run:
        run.log_params({"lr": 0.1})
        run.log_metrics({"m": 1.0})
    second = tracker.trackers[1]
    assert isinstance(second, LocalExperimentTracker)
    second.store.add_params(run.ids["second"], {"extra": "only here"})
    result = cli("runs", "verify", run.id, "--config", path)
    assert result.returncode == 1
    assert "params: first has {'lr': '0.1'}" in result.stdout


def test_a_bad_member_in_a_config_names_its_place(isolated_cwd: Path) -> None:
    path = isolated_cwd / "bad.yaml"
    path.write_text("experiment_trackers:\n  - flavor: local\n  - flavor: locl\n")
    result = cli("config", "validate", path)
    assert result.returncode == 1
    assert "bad.yaml, tracker 2: unknown flavor 'locl' (did you mean 'local'?)" in result.stderr
    path.write_text("experiment_trackers:\n  - flavor: local\n  - flavor: local\n")
    with pytest.raises(trackstack.errors.ConfigError, match="distinct names"):
        trackstack.load_tracker(path)


def test_the_warning_for_a_troubled_member_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fan, _, troubled = pair(tmp_path)
    caplog.set_level(logging.WARNING)
    run = fan.start_run()
    troubled.refused_key = "m"
    for step in range(20):
        run.log_metrics({"m": float(step)})
        run.flush()
    with pytest.raises(BackendError):
        run.end()
    said = [r for r in caplog.records if "fan-out member troubled" in r.getMessage()]
    assert len(said) == 1


def test_rank_policy_and_settings_go_to_the_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fan, healthy, troubled = pair(tmp_path)
    fan.log_on = "rank0"
    assert healthy.log_on == troubled.log_on == "rank0"
    monkeypatch.setenv("RANK", "1")
    with fan.start_run(experiment="ranked") as run:
        run.log_metrics({"m": 1.0})
    assert run.discards
    assert healthy.missing_store() is not None  # nothing was written on rank 1
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(InvalidInputError, match="map a member's name"):
        fan.start_run(settings={"nobody": {}})
    with fan.start_run(experiment="ranked") as run:
        run.log_metrics({"m": 1.0})
    assert fan.verify(run.id).agree
