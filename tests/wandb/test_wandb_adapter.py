"""What is particular to the W&B adapter: its layout in W&B, modes, keys, lifecycle, read paths."""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import wandb
from trackstack_wandb.online import record_from_api
from trackstack_wandb.runfile import read_state, run_files
from trackstack_wandb.testing import WandbRunFileReader
from trackstack_wandb.tracker import WandbExperimentTracker

import trackstack
from tests.extras import sdk_imported_around_a_run
from tests.swap import SCRIPT, same_records
from tests.wandb.conftest import build
from trackstack import RunStatus, StepRunInfo
from trackstack.errors import AuthenticationError, BackendUnavailableError, InvalidInputError

KEY = "wandbSECRET" + "k" * 29  # W&B checks that keys have 40 characters


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the layout in W&B, read from the run file itself -------------------------------------


def test_the_run_file_holds_everything_in_wandbs_own_shapes(
    offline: WandbExperimentTracker, tmp_path: Path
) -> None:
    (tmp_path / "model.pkl").write_bytes(b"pickle")
    with (
        pytest.raises(KeyboardInterrupt),
        offline.start_run(experiment="layout", run_name="r1", tags={"team": "a"}) as run,
    ):
        run.log_params({"lr": 0.01, "layers": 3, "optimizer": {"name": "adam", "b1": 0.9}})
        run.log_params({"sizes": [64, 128], "flag": True, "nothing": None})
        for step, value in [(5, 1.0), (2, 2.0), (2, 3.0), (7, math.nan), (0, math.inf)]:
            run.log_metrics({"loss": value, "acc": -value}, step=step)
        run.set_tags({"team": "b", "stage": "dev"})
        run.log_artifact(tmp_path / "model.pkl", artifact_path="best")
        raise KeyboardInterrupt
    (path,) = run_files(offline.config.dir, run.id)
    state = read_state([path])
    assert state.project == "layout"
    assert state.name == "r1"
    # Params keep their types, nested as dicts.
    assert {k: v for k, v in state.config.items() if not k.startswith("_")} == {
        "lr": 0.01,
        "layers": 3,
        "optimizer": {"name": "adam", "b1": 0.9},
        "sizes": [64, 128],
        "flag": True,
        "nothing": None,
    }
    # Every point is a history row carrying trackstack's step, backwards steps included.
    rows = [(row["trackstack/step"], row["loss"], row["acc"]) for row in state.history]
    assert rows[:3] == [(5, 1.0, -1.0), (2, 2.0, -2.0), (2, 3.0, -3.0)]
    assert rows[3][0] == 7
    assert math.isnan(rows[3][1])
    assert rows[4] == (0, math.inf, -math.inf)
    assert [row["_step"] for row in state.history] == [0, 1, 2, 3, 4]
    assert sorted(state.tags) == ["stage:dev", "team:b"]
    assert state.artifacts == ["best/model.pkl"]
    assert state.exit_code == 130


def test_a_tag_wandb_cannot_hold_is_kept_in_trackstacks_copy(
    offline: WandbExperimentTracker,
) -> None:
    long = "x" * 80
    with offline.start_run(tags={"short": "1", "long": long, "a:b": "c"}) as run:
        pass
    assert offline.get_run(run.id).tags == {"short": "1", "long": long, "a:b": "c"}
    assert sorted(read_state(run_files(offline.config.dir, run.id)).tags) == ["a:b:c", "short:1"]


def test_params_wandbs_nested_config_cannot_hold_are_rejected_whole(
    offline: WandbExperimentTracker,
) -> None:
    with offline.start_run() as run:
        run.log_params({"opt": 1})
        with pytest.raises(InvalidInputError, match=r"'opt\.lr' cannot nest under param 'opt'"):
            run.log_params({"fresh": 1, "opt.lr": 0.1})
        run.log_params({"model": {"depth": 3}})
        with pytest.raises(InvalidInputError, match="'model' cannot be a value"):
            run.log_params({"model": 3})
        with pytest.raises(InvalidInputError, match="'_wandb' is W&B's"):
            run.log_params({"_wandb": 1})
        run.log_params({"a..b": 1})  # cannot nest, so kept whole
    assert offline.get_run(run.id).params == {"opt": "1", "model.depth": "3", "a..b": "1"}


def test_metric_names_wandb_keeps_for_itself_are_rejected_before_buffering(
    offline: WandbExperimentTracker,
) -> None:
    with offline.start_run() as run:
        run.log_metrics({"loss": 1.0})
        for name in ("_step", "_timestamp", "trackstack/step"):
            with pytest.raises(InvalidInputError, match="reserved by the wandb backend"):
                run.log_metrics({"ok": 1.0, name: 1.0})
    assert set(offline.get_run(run.id).metrics) == {"loss"}


def test_runs_in_one_process_stay_separate(offline: WandbExperimentTracker) -> None:
    first = offline.start_run(experiment="a")
    second = offline.start_run(experiment="b")
    first.log_metrics({"m": 1.0})
    second.log_metrics({"m": 2.0})
    second.end()
    first.log_metrics({"m": 3.0})
    first.end()
    assert [p.value for p in offline.get_run(first.id).metrics["m"]] == [1.0, 3.0]
    assert [p.value for p in offline.get_run(second.id).metrics["m"]] == [2.0]
    assert wandb.run is None


def test_settings_name_group_and_job_type(offline: WandbExperimentTracker) -> None:
    settings = {"run_name": "named", "group": "sweep-1", "job_type": "train", "tags": {"s": "1"}}
    with offline.start_run(experiment="settings", settings=settings) as run:
        pass
    state = read_state(run_files(offline.config.dir, run.id))
    assert (state.name, state.group) == ("named", "sweep-1")
    assert offline.get_run(run.id).tags == {"s": "1"}
    with offline.start_run(experiment="settings") as parent:
        child = offline.start_run(experiment="settings", parent=parent)
        child.end()
    assert read_state(run_files(offline.config.dir, child.id)).group == parent.id


# -- modes and keys ----------------------------------------------------------------------


def test_disabled_mode_accepts_every_call_and_writes_nothing(tmp_path: Path) -> None:
    tracker = build(mode="disabled", dir=tmp_path / "runs")
    (tmp_path / "f.txt").write_text("x")
    info = StepRunInfo(pipeline_name="p", run_name="p-1", step_name="s", run_id="d1")
    tracker.prepare_step_run(info)
    wandb.log({"native": 1.0})
    with tracker.start_run(tags={"a": 1}) as run:
        run.log_params({"lr": 0.1})
        run.log_metrics({"loss": 1.0}, step=3)
        run.set_tags({"b": 2})
        run.log_artifact(tmp_path / "f.txt")
    tracker.cleanup_step_run(info, step_failed=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.wandb"))
    with pytest.raises(trackstack.errors.RunNotFoundError, match="disabled"):
        tracker.get_run(run.id)
    assert tracker.list_runs() == []


def test_online_without_a_key_fails_fast_saying_how_to_fix_it(tmp_path: Path) -> None:
    tracker = build(mode="online", dir=tmp_path / "runs")
    with pytest.raises(AuthenticationError, match=r"api_key.*mode: offline"):
        tracker.start_run()


def test_an_unreachable_server_is_waited_for_only_init_timeout(tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    tracker = build(mode="online", dir=tmp_path / "runs", api_key=KEY, base_url=base_url,
                    init_timeout=3)  # fmt: skip
    tracker.start_offline = False
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as raised:
        tracker.start_run()
    # wandb alone would wait 90 s; the bound is init_timeout plus wandb's own start-up.
    assert time.monotonic() - started < 3 + 20
    assert KEY not in str(raised.value)
    # By default the run is journaled whole and created once W&B answers (or at sync).
    tracker.start_offline, tracker.journal_dir = True, tmp_path / "journal"
    tracker.end_timeout = 0.1
    with tracker.start_run() as run:
        run.log_metrics({"m": 1.0})
    assert run.id.startswith("pending-")
    waiting = [p for p in (tmp_path / "journal").rglob("*") if p.is_file()]
    assert any(p.name == "records" for p in waiting)
    assert not [p for p in waiting if KEY.encode() in p.read_bytes()]


def test_fallback_to_offline_continues_the_run_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    tracker = build(mode="online", dir=tmp_path / "runs", api_key=KEY, base_url=base_url,
                    init_timeout=3, fallback_to_offline=True)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="trackstack_wandb"):
        for value in (1.0, 2.0):
            with tracker.start_run(experiment="fallback") as run:
                run.log_metrics({"m": value})
            record = WandbRunFileReader.for_tracker(tracker).read(run.id)
            assert [p.value for p in record.metrics["m"]] == [value]
    said = [r.getMessage() for r in caplog.records if "continue offline" in r.getMessage()]
    assert len(said) == 1, said
    assert "wandb sync" in said[0]
    assert KEY not in caplog.text


def test_the_api_key_leaves_no_trace(tmp_path: Path) -> None:
    before = {k: v for k, v in os.environ.items() if k.startswith("WANDB_")}
    tracker = build(mode="offline", dir=tmp_path / "runs", api_key=KEY, entity="team")
    info = StepRunInfo(pipeline_name="p", run_name="p-1", step_name="s", run_id="k1")
    tracker.prepare_step_run(info)
    tracker.step_run(info).log_params({"lr": 0.1})
    metadata = tracker.get_step_run_metadata(info)
    tracker.cleanup_step_run(info, step_failed=False)
    assert {k: v for k, v in os.environ.items() if k.startswith("WANDB_")} == before
    shown = [repr(tracker.config), tracker.config.model_dump_json(), repr(metadata)]
    assert not [text for text in shown if KEY in text]
    written = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert written
    assert not [p for p in written if KEY.encode() in p.read_bytes()]
    assert metadata["wandb_run_id"] == tracker.step_run(info).id
    assert metadata["wandb_project"] == "p"
    assert metadata["wandb_entity"] == "team"
    assert Path(metadata["wandb_offline_dir"]).is_dir()


# -- ZenML's step lifecycle --------------------------------------------------------------


def test_native_wandb_log_lands_in_the_step_run_and_the_active_run_is_restored(
    offline: WandbExperimentTracker,
) -> None:
    own = wandb.init(mode="offline", dir=str(offline.config.dir), project="own")
    try:
        info = StepRunInfo(pipeline_name="native", run_name="n-1", step_name="fit", run_id="n1")
        offline.prepare_step_run(info)
        run = offline.step_run(info)
        assert wandb.run is not None
        assert wandb.run.id == run.id
        wandb.log({"native": 2.5, "trackstack/step": 3})
        wandb.config.update({"native_param": "yes"})  # type: ignore[no-untyped-call]
        offline.cleanup_step_run(info, step_failed=True)
        assert wandb.run is own
    finally:
        own.finish()
    record = WandbRunFileReader.for_tracker(offline).read(run.id)
    assert record.status is RunStatus.FAILED
    assert record.params == {"native_param": "yes"}
    assert [(p.step, p.value) for p in record.metrics["native"]] == [(3, 2.5)]


# -- the online read path ------------------------------------------------------------------


def test_online_runs_read_through_the_public_api_recorded_objects() -> None:
    """No W&B server runs here: these objects have the shape wandb.Api returns (wandb 0.31)."""
    manifest = SimpleNamespace(entries={"model/weights.bin": object(), "model.pkl": object()})
    api_run = SimpleNamespace(
        id="abc123",
        name="r1",
        project="proj",
        state="killed",
        config={
            "lr": 0.1,
            "optimizer": {"name": "adam"},
            "_trackstack": {"tags": {"a:b": "c"}, "parent_id": "parent1"},
        },
        tags=["a:b:c"],
        created_at="2026-11-27T10:00:00Z",
        heartbeat_at="2026-11-27T10:05:00Z",
        url="https://wandb.example/team/proj/runs/abc123",
        scan_history=lambda: iter(
            [
                {"_step": 0, "_timestamp": 1.0, "trackstack/step": 5, "loss": 1.0},
                {"_step": 1, "_timestamp": 2.0, "trackstack/step": 2, "loss": 0.5},
                {"_step": 2, "_timestamp": 3.0, "native": 7.0, "image": {"_type": "image"}},
            ]
        ),
        logged_artifacts=lambda: [SimpleNamespace(manifest=manifest)],
    )
    record = record_from_api(api_run)
    assert record.status is RunStatus.KILLED
    assert record.params == {"lr": "0.1", "optimizer.name": "adam"}
    assert record.tags == {"a:b": "c"}
    assert [(p.step, p.value) for p in record.metrics["loss"]] == [(5, 1.0), (2, 0.5)]
    assert [(p.step, p.value) for p in record.metrics["native"]] == [(2, 7.0)]
    assert "image" not in record.metrics
    assert record.artifacts == ["model.pkl", "model/weights.bin"]
    assert record.parent_id == "parent1"
    assert record.start_time is not None
    assert record.start_time.tzinfo is not None
    assert record.end_time is not None
    assert (record.end_time - record.start_time).seconds == 300


# -- config, packaging -------------------------------------------------------------------


def test_importing_the_adapter_imports_no_wandb(isolated_cwd: Path) -> None:
    offline = {"flavor": "wandb", "config": {"mode": "offline"}}
    loaded = sdk_imported_around_a_run("trackstack_wandb", "wandb", offline)
    assert loaded == ["False", "True"]


def test_the_same_script_logs_to_wandb_as_to_the_local_store(isolated_cwd: Path) -> None:
    (isolated_cwd / "train.py").write_text(SCRIPT)
    configs = {
        "local": "experiment_tracker:\n  flavor: local\n  config:\n    root: store\n",
        "wandb": "experiment_tracker:\n  flavor: wandb\n"
        "  config:\n    mode: offline\n    dir: wandb-runs\n",
    }
    records = []
    for flavor, text in configs.items():
        (isolated_cwd / "trackstack.yaml").write_text(text)
        result = subprocess.run(
            [sys.executable, "train.py"], capture_output=True, text=True, cwd=isolated_cwd
        )
        assert result.returncode == 0, result.stderr
        tracker = trackstack.load_tracker(isolated_cwd / "trackstack.yaml")
        assert tracker.flavor == flavor
        records.append(tracker.get_run(result.stdout.split()[-1]))
    same_records(*records)


def test_the_flavor_registers_its_conformance_reader(offline: WandbExperimentTracker) -> None:
    from importlib.metadata import entry_points

    (point,) = [p for p in entry_points(group="trackstack.readers") if p.name == "wandb"]
    reader = point.load()(offline)
    assert isinstance(reader, WandbRunFileReader)
    with offline.start_run() as run:
        run.log_metrics({"m": 1.0})
    assert reader.read(run.id).metrics["m"][0].value == 1.0


def test_config_fields_check_their_values(tmp_path: Path) -> None:
    with pytest.raises(trackstack.errors.ConfigError, match="mode"):
        build(mode="sometimes")
    with pytest.raises(trackstack.errors.ConfigError, match="base_url"):
        build(base_url="wandb.example.com")
    with pytest.raises(trackstack.errors.ConfigError, match="init_timeout"):
        build(init_timeout=0)
    relative = build(dir="runs")
    assert relative.config.dir == (Path.cwd() / "runs")


def test_extra_settings_reach_wandb(tmp_path: Path) -> None:
    tracker = build(mode="offline", dir=tmp_path / "runs", settings={"x_sync_dir_suffix": "node7"})
    with tracker.start_run() as run:
        pass
    record = tracker.get_run(run.id)
    assert record.status is RunStatus.FINISHED
    assert record.url is not None
    assert record.url.endswith(f"{run.id}-node7")


def test_readme_wandb_config_loads(isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_readme import blocks

    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.delenv("WANDB_DIR")
    (text,) = [text for text in blocks("yaml") if "flavor: wandb" in text]
    (isolated_cwd / "wandb.yaml").write_text(text)
    loaded = trackstack.load_tracker(isolated_cwd / "wandb.yaml")
    assert isinstance(loaded, WandbExperimentTracker)
    config = loaded.config
    assert (config.entity, config.project_name, config.mode) == ("growth-team", "churn", "offline")
    assert config.dir == Path("/scratch/wandb")
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == KEY


def test_a_resumed_run_read_while_open_shows_all_its_files(
    offline: WandbExperimentTracker,
) -> None:
    with offline.start_run(experiment="resumed") as first:
        first.log_params({"lr": 0.1})
        first.log_metrics({"loss": 1.0}, step=0)
    again = offline.start_run(run_id=first.id)
    again.log_metrics({"loss": 0.5}, step=1)
    while_open = offline.get_run(first.id)  # a Trainer's evaluate() after train() reads so
    again.end()
    assert while_open.status is RunStatus.RUNNING
    assert while_open.params == {"lr": "0.1"}
    assert [p.step for p in while_open.metrics["loss"]] == [0, 1]
    assert offline.get_run(first.id).metrics == while_open.metrics


def test_a_run_a_bridge_ends_at_exit_is_ended_before_wandb_tears_down(tmp_path: Path) -> None:
    # wandb registers its own exit hook when a run starts; trackstack's must run first.
    script = tmp_path / "late.py"
    script.write_text(
        "import sys, trackstack\n"
        "from trackstack.integrations.bridge import RunBridge\n"
        f"tracker = trackstack.load_tracker({{'flavor': 'wandb', 'config': "
        f"{{'mode': 'offline', 'dir': {str(tmp_path / 'runs')!r}}}}})\n"
        "bridge = RunBridge('testing', tracker)\n"
        "bridge.log_metrics({'loss': 1.0}, step=0)\n"
        "print(bridge.run_id)\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "refused" not in result.stderr
    tracker = build(mode="offline", dir=tmp_path / "runs")
    record = tracker.get_run(result.stdout.split()[-1])
    assert record.status is RunStatus.FINISHED
    assert record.metrics["loss"][0].value == 1.0
