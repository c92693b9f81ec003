"""``TrackerConformance``: the executable definition of a trackstack adapter.

Every test logs through the run API, then checks what the backend holds twice:
through the ``reader`` fixture (the backend's own client) and through the
adapter's ``get_run``. Two adapters that pass behave the same for code that
logs through trackstack.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from trackstack.config import load_tracker
from trackstack.enums import RunStatus
from trackstack.errors import (
    ArtifactNotFoundError,
    InvalidInputError,
    ParamConflictError,
    RunNotFoundError,
)
from trackstack.experiment_trackers import BaseExperimentTracker, StepRunInfo
from trackstack.records import RunRecord
from trackstack.run import Run
from trackstack.testing.readers import RunReader

__all__ = ["TrackerConformance"]

NativeLogger = Callable[[str, float, int], None]
"""Logs one metric point through the backend SDK's own API into its active run."""


# The promises a failing test names, so that its message says what the adapter broke.
POINTS = "every metric point is stored once, with its step and value, in logging order"
PARAMS = "params are stored whole, as the strings trackstack made of them"
TAGS = "every tag set is stored, the last value set winning"
STATUS = "a run ends FINISHED, FAILED on an exception, KILLED on KeyboardInterrupt"
ARTIFACTS = "every file logged is stored under its artifact path"
SECRETS = "secret config values appear in no repr, metadata, error message or run data"


def points(record: RunRecord, key: str) -> list[tuple[int, float]]:
    return [(p.step, p.value) for p in record.metrics.get(key, [])]


def assert_points(actual: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    """Equal step by step, value by value, with NaN equal to NaN."""
    same = len(actual) == len(expected) and all(
        step == want_step and (value == want or (math.isnan(value) and math.isnan(want)))
        for (step, value), (want_step, want) in zip(actual, expected, strict=True)
    )
    if not same:
        shown = f"logged {expected[:8]}{'...' if len(expected) > 8 else ''} ({len(expected)}), "
        shown += f"stored {actual[:8]}{'...' if len(actual) > 8 else ''} ({len(actual)})"
        raise AssertionError(f"broken promise: {POINTS}; {shown}")


def make_tree(parent: Path) -> Path:
    model = parent / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00\x01\x02")
    (model / "sub" / "notes.txt").write_text("notes")
    return model


class TrackerConformance:
    """Subclass this in a test module and override the ``tracker`` and ``reader`` fixtures."""

    # -- what an adapter supplies ----------------------------------------------------

    @pytest.fixture
    def tracker(self) -> BaseExperimentTracker:
        """A configured tracker on a fresh, empty store."""
        raise NotImplementedError("override the `tracker` fixture: a tracker on a fresh store")

    @pytest.fixture
    def reader(self) -> RunReader:
        """Reads runs back through the backend's own client, not the adapter."""
        raise NotImplementedError("override the `reader` fixture: reads via the backend's client")

    @pytest.fixture
    def native_logger(self) -> NativeLogger:
        """Logs through the SDK's own API; needed when ``capabilities.sdk_active_run``."""
        raise NotImplementedError("override `native_logger`: the SDK's own metric call")

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def require(tracker: BaseExperimentTracker, capability: str) -> None:
        if not getattr(tracker.capabilities, capability):
            pytest.skip(f"the {tracker.flavor} flavor declares {capability}=False")

    @staticmethod
    def both(tracker: BaseExperimentTracker, reader: RunReader, run_id: str) -> Iterator[RunRecord]:
        """The run as the backend's client reads it, then as the adapter reads it."""
        yield reader.read(run_id)
        yield tracker.get_run(run_id)

    # -- params ------------------------------------------------------------------------

    def test_params_of_every_type_are_strings(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        with tracker.start_run() as run:
            run.log_params(
                {
                    "lr": 0.01,
                    "layers": 3,
                    "name": "resnet",
                    "flag": True,
                    "nothing": None,
                    "sizes": [64, 128],
                    "shape": (2, 3),
                    "optimizer": {"name": "adam", "betas": {"b1": 0.9}},
                }
            )
        expected = {
            "lr": "0.01",
            "layers": "3",
            "name": "resnet",
            "flag": "True",
            "nothing": "None",
            "sizes": "[64, 128]",
            "shape": "[2, 3]",
            "optimizer.name": "adam",
            "optimizer.betas.b1": "0.9",
        }
        for record in self.both(tracker, reader, run.id):
            assert record.params == expected, f"broken promise: {PARAMS}"

    def test_same_param_again_is_a_no_op_another_value_conflicts(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        with tracker.start_run() as run:
            run.log_params({"lr": 0.1, "opt": {"name": "sgd"}})
            run.log_params({"lr": 0.1, "opt.name": "sgd"})
            with pytest.raises(ParamConflictError, match="'lr'"):
                run.log_params({"fresh": 1, "lr": 0.2})
        for record in self.both(tracker, reader, run.id):
            assert record.params == {"lr": "0.1", "opt.name": "sgd"}

    # -- metrics -----------------------------------------------------------------------

    def test_many_points_read_back_exactly(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        steps = 2_500
        with tracker.start_run() as run:
            for step in range(steps):
                run.log_metrics({"loss": 1 / (step + 1), "acc": step / steps}, step=step)
        for record in self.both(tracker, reader, run.id):
            assert_points(points(record, "loss"), [(s, 1 / (s + 1)) for s in range(steps)])
            assert_points(points(record, "acc"), [(s, s / steps) for s in range(steps)])

    def test_steps_given_and_automatic(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        with tracker.start_run() as run:
            run.log_metrics({"a": 1.0})
            run.log_metrics({"a": 2.0, "b": 2.0})
            run.log_metrics({"a": 3.0}, step=10)
            run.log_metrics({"b": 4.0})
        for record in self.both(tracker, reader, run.id):
            assert_points(points(record, "a"), [(0, 1.0), (1, 2.0), (10, 3.0)])
            assert_points(points(record, "b"), [(1, 2.0), (11, 4.0)])

    def test_out_of_order_and_repeated_steps_keep_logging_order(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        logged = [(5, 1.0), (2, 2.0), (2, 3.0), (2, 3.0), (7, 4.0), (0, 5.0)]
        with tracker.start_run() as run:
            for step, value in logged:
                run.log_metrics({"m": value}, step=step)
        for record in self.both(tracker, reader, run.id):
            assert_points(points(record, "m"), logged)

    def test_nan_and_infinities_round_trip(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        with tracker.start_run() as run:
            run.log_metrics({"nan": math.nan, "inf": math.inf, "ninf": -math.inf}, step=0)
            run.log_metrics({"nan": 1.0, "inf": 1.0, "ninf": 1.0}, step=1)
        record = tracker.get_run(run.id)
        assert_points(points(record, "nan"), [(0, math.nan), (1, 1.0)])
        assert_points(points(record, "inf"), [(0, math.inf), (1, 1.0)])
        assert_points(points(record, "ninf"), [(0, -math.inf), (1, 1.0)])
        stored = reader.read(run.id)
        assert math.isnan(points(stored, "nan")[0][1])
        # A store may keep ±inf as ±float max; the adapter must map it back.
        assert points(stored, "inf")[0][1] in (math.inf, 1.7976931348623157e308)
        assert points(stored, "ninf")[0][1] in (-math.inf, -1.7976931348623157e308)

    def test_numpy_scalars_zero_d_arrays_and_ints(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        import numpy  # the suite needs numpy: numpy values are what training code logs

        with tracker.start_run() as run:
            run.log_metrics(
                {"f32": numpy.float32(0.5), "i64": numpy.int64(7), "arr": numpy.array(2.5)},
                step=numpy.int64(3),
            )
            run.log_metrics({"big": 10**300, "neg": -3})
        for record in self.both(tracker, reader, run.id):
            assert_points(points(record, "f32"), [(3, 0.5)])
            assert_points(points(record, "i64"), [(3, 7.0)])
            assert_points(points(record, "arr"), [(3, 2.5)])
            assert_points(points(record, "big"), [(4, 1e300)])
            assert_points(points(record, "neg"), [(4, -3.0)])

    def test_many_keys_at_once(self, tracker: BaseExperimentTracker, reader: RunReader) -> None:
        keys = [f"group{i % 7}/metric_{i}" for i in range(120)]
        with tracker.start_run() as run:
            run.log_metrics({key: float(i) for i, key in enumerate(keys)}, step=0)
            run.log_params({f"p{i}": i for i in range(250)})
            run.set_tags({f"t{i}": i for i in range(150)})
        for record in self.both(tracker, reader, run.id):
            assert {key: points(record, key) for key in keys} == {
                key: [(0, float(i))] for i, key in enumerate(keys)
            }
            assert record.params == {f"p{i}": str(i) for i in range(250)}
            assert {f"t{i}": str(i) for i in range(150)}.items() <= record.tags.items()

    # -- tags --------------------------------------------------------------------------

    def test_tags_set_and_overwritten(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        with tracker.start_run(tags={"stage": "dev", "team": "a"}) as run:
            run.set_tags({"stage": "prod", "size": 3})
        expected = {"stage": "prod", "team": "a", "size": "3"}
        stored = reader.read(run.id)
        assert expected.items() <= stored.tags.items(), f"broken promise: {TAGS}"
        assert tracker.get_run(run.id).tags == expected, f"broken promise: {TAGS}"

    # -- artifacts ---------------------------------------------------------------------

    def test_artifact_file_and_directory_tree(
        self, tracker: BaseExperimentTracker, reader: RunReader, tmp_path: Path
    ) -> None:
        (tmp_path / "model.pkl").write_bytes(b"pickle")
        tree = make_tree(tmp_path)
        with tracker.start_run() as run:
            run.log_artifact(tmp_path / "model.pkl")
            run.log_artifact(str(tmp_path / "model.pkl"), artifact_path="best/copy")
            run.log_artifact(tree)
            run.log_artifact(tree, artifact_path="again")
        expected = [
            "again/model/sub/notes.txt",
            "again/model/weights.bin",
            "best/copy/model.pkl",
            "model.pkl",
            "model/sub/notes.txt",
            "model/weights.bin",
        ]
        for record in self.both(tracker, reader, run.id):
            assert sorted(record.artifacts) == expected, f"broken promise: {ARTIFACTS}"

    def test_missing_artifact_uploads_nothing(
        self, tracker: BaseExperimentTracker, reader: RunReader, tmp_path: Path
    ) -> None:
        with tracker.start_run() as run:
            with pytest.raises(ArtifactNotFoundError, match="no-such-file"):
                run.log_artifact(tmp_path / "no-such-file.bin")
            with pytest.raises(FileNotFoundError):
                run.log_artifact(tmp_path / "no-such-dir")
        for record in self.both(tracker, reader, run.id):
            assert record.artifacts == []
            assert record.status is RunStatus.FINISHED

    # -- status ------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("exception", "status"),
        [
            (None, RunStatus.FINISHED),
            (ValueError("failed step"), RunStatus.FAILED),
            (KeyboardInterrupt(), RunStatus.KILLED),
            (SystemExit(0), RunStatus.FINISHED),
            (SystemExit(2), RunStatus.FAILED),
        ],
        ids=["clean", "exception", "keyboard-interrupt", "exit-0", "exit-2"],
    )
    def test_status_follows_how_the_block_ends(
        self,
        tracker: BaseExperimentTracker,
        reader: RunReader,
        exception: BaseException | None,
        status: RunStatus,
    ) -> None:
        def body(run: Run) -> None:
            run.log_metrics({"m": 1.0})
            if exception is not None:
                raise exception

        if exception is None:
            with tracker.start_run() as run:
                body(run)
        else:
            with pytest.raises(type(exception)), tracker.start_run() as run:
                body(run)
        for record in self.both(tracker, reader, run.id):
            assert record.status is status, (
                f"broken promise: {STATUS}; expected {status.value}, stored {record.status.value}"
            )
            assert_points(points(record, "m"), [(0, 1.0)])

    def test_plain_calls_times_and_end_by_name(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        run = tracker.start_run(experiment="plain-calls", run_name="plain")
        running = tracker.get_run(run.id)
        assert running.status is RunStatus.RUNNING
        assert running.end_time is None
        run.end("killed")
        run.end()  # ending an ended run does nothing
        with pytest.raises(InvalidInputError, match="has ended"):
            run.log_metrics({"late": 1.0})
        for record in self.both(tracker, reader, run.id):
            assert record.status is RunStatus.KILLED
            assert record.name == "plain"
            assert record.experiment == "plain-calls"
            assert record.start_time is not None
            assert record.start_time.tzinfo is not None
            assert record.end_time is not None
            assert record.end_time >= record.start_time
            assert "late" not in record.metrics

    def test_unknown_run_id(self, tracker: BaseExperimentTracker) -> None:
        with pytest.raises(RunNotFoundError):
            tracker.get_run("0123456789abcdef0123456789abcdef")

    # -- resume and nesting ------------------------------------------------------------

    def test_resume_knows_params_and_continues_steps(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        self.require(tracker, "resume")
        with tracker.start_run(experiment="resumed", run_name="first") as run:
            run.log_params({"lr": 0.1})
            run.log_metrics({"loss": 1.0})
            run.log_metrics({"loss": 0.9}, step=4)
        with tracker.start_run(run_id=run.id) as again:
            assert again.id == run.id
            assert again.experiment == "resumed"
            again.log_params({"lr": 0.1})
            with pytest.raises(ParamConflictError, match="'lr'"):
                again.log_params({"lr": 0.5})
            again.log_metrics({"loss": 0.8})
        for record in self.both(tracker, reader, run.id):
            assert record.status is RunStatus.FINISHED
            assert record.params == {"lr": "0.1"}
            assert_points(points(record, "loss"), [(0, 1.0), (4, 0.9), (5, 0.8)])

    def test_nested_runs(self, tracker: BaseExperimentTracker, reader: RunReader) -> None:
        self.require(tracker, "nested_runs")
        with tracker.start_run(experiment="nesting") as parent:
            with tracker.start_run(experiment="nesting", parent=parent) as child:
                child.log_metrics({"m": 1.0})
            with tracker.start_run(experiment="nesting", parent=parent.id) as second:
                pass
        for run_id in (child.id, second.id):
            for record in self.both(tracker, reader, run_id):
                assert record.parent_id == parent.id
        assert tracker.get_run(parent.id).parent_id is None

    # -- listing and comparing ---------------------------------------------------------

    def test_list_runs_newest_first_every_status(self, tracker: BaseExperimentTracker) -> None:
        # Fresh names: the suite may run again against the same long-lived server.
        listed, elsewhere = (f"{name}-{uuid.uuid4().hex[:12]}" for name in ("listed", "other"))
        ids = []
        for status in ("FINISHED", "FAILED", "KILLED"):
            run = tracker.start_run(experiment=listed)
            run.log_params({"status": status})
            run.end(status)
            ids.append(run.id)
        running = tracker.start_run(experiment=listed)
        tracker.start_run(experiment=elsewhere).end()
        records = tracker.list_runs(experiment=listed)
        assert [r.id for r in records] == [running.id, *reversed(ids)]
        assert [r.status for r in records] == [
            RunStatus.RUNNING,
            RunStatus.KILLED,
            RunStatus.FAILED,
            RunStatus.FINISHED,
        ]
        assert {r.id for r in tracker.list_runs()} >= {*ids, running.id}
        running.end()

    def test_compare_runs(self, tracker: BaseExperimentTracker) -> None:
        from trackstack.compare import compare_runs

        ids = []
        for lr in (0.1, 0.2):
            with tracker.start_run(experiment="compared") as run:
                run.log_params({"lr": lr, "epochs": 3})
                for step in range(3):
                    run.log_metrics({"loss": lr * (3 - step)}, step=step)
            ids.append(run.id)
        comparison = compare_runs(tracker.get_run(run_id) for run_id in ids)
        assert comparison.params == {
            "epochs": {ids[0]: "3", ids[1]: "3"},
            "lr": {ids[0]: "0.1", ids[1]: "0.2"},
        }
        assert comparison.metrics == {"loss": {ids[0]: 0.1, ids[1]: 0.2}}
        assert comparison.differing == ["lr", "loss"]

    # -- threads -----------------------------------------------------------------------

    def test_threads_logging_into_one_run_lose_nothing(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        threads, calls = 8, 250
        barrier = threading.Barrier(threads)
        with tracker.start_run() as run:

            def work(index: int) -> None:
                barrier.wait()
                for i in range(calls):
                    run.log_metrics({f"thread{index}": float(i)})
                    if i % 50 == 0:
                        run.log_params({f"p{index}.{i}": i})

            workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        for record in self.both(tracker, reader, run.id):
            for index in range(threads):
                assert [v for _, v in points(record, f"thread{index}")] == [
                    float(i) for i in range(calls)
                ]
            steps = sorted(p.step for series in record.metrics.values() for p in series)
            assert steps == list(range(threads * calls))
            assert len(record.params) == threads * calls // 50

    # -- ZenML's step lifecycle -----------------------------------------------------------

    def test_step_lifecycle(self, tracker: BaseExperimentTracker, reader: RunReader) -> None:
        info = StepRunInfo(pipeline_name="pipe", run_name="pipe-1", step_name="fit", run_id="p1")
        tracker.prepare_step_run(info)
        run = tracker.step_run(info)
        run.log_metrics({"loss": 0.5}, step=0)
        metadata = tracker.get_step_run_metadata(info)
        tracker.cleanup_step_run(info, step_failed=False)
        assert metadata["experiment_tracker_url"] == run.url
        assert metadata[f"{tracker.flavor}_run_id"] == run.id
        for record in self.both(tracker, reader, run.id):
            assert record.status is RunStatus.FINISHED
            assert_points(points(record, "loss"), [(0, 0.5)])
            assert record.tags["trackstack.pipeline_run_id"] == "p1"

        failing = info.model_copy(update={"step_name": "evaluate"})
        tracker.prepare_step_run(failing)
        tracker.cleanup_step_run(failing, step_failed=True)
        assert reader.read(tracker.step_run(failing).id).status is RunStatus.FAILED

    def test_native_sdk_logs_into_the_step_run(
        self, tracker: BaseExperimentTracker, reader: RunReader, request: pytest.FixtureRequest
    ) -> None:
        self.require(tracker, "sdk_active_run")
        native: NativeLogger = request.getfixturevalue("native_logger")
        info = StepRunInfo(pipeline_name="pipe", run_name="pipe-2", step_name="fit", run_id="p2")
        tracker.prepare_step_run(info)
        tracker.step_run(info).log_metrics({"ours": 1.0}, step=0)
        native("native", 2.0, 1)
        tracker.cleanup_step_run(info, step_failed=False)
        record = reader.read(tracker.step_run(info).id)
        assert_points(points(record, "ours"), [(0, 1.0)])
        assert_points(points(record, "native"), [(1, 2.0)])
        assert record.status is RunStatus.FINISHED

    # -- secrets -------------------------------------------------------------------------

    def test_secrets_appear_nowhere(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        secrets = [
            value.get_secret_value()
            for value in dict(tracker.config).values()
            if isinstance(value, SecretStr) and value.get_secret_value()
        ]
        info = StepRunInfo(pipeline_name="pipe", run_name="pipe-3", step_name="s", run_id="p3")
        tracker.prepare_step_run(info)
        metadata = tracker.get_step_run_metadata(info)
        tracker.cleanup_step_run(info, step_failed=False)
        record = reader.read(tracker.step_run(info).id)
        with pytest.raises(InvalidInputError) as bad_input, tracker.start_run() as run:
            run.log_metrics({"../x": 1.0})
        shown = [
            repr(tracker),
            repr(tracker.config),
            str(tracker.config),
            tracker.config.model_dump_json(),
            repr(metadata),
            repr(record.params),
            repr(record.tags),
            str(bad_input.value),
        ]
        leaks = [text for text in shown for secret in secrets if secret in text]
        assert not leaks, f"broken promise: {SECRETS}; found in {len(leaks)} place(s)"

    # -- bad input ---------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("call", "error", "message"),
        [
            (lambda r: r.log_metrics({"ok": 1, "../x": 1}), InvalidInputError, "path-like"),
            (lambda r: r.log_metrics({"ok": 1, "a//b": 1}), InvalidInputError, "path-like"),
            (lambda r: r.log_metrics({"ok": 1, "bad*": 1}), InvalidInputError, r"'\*'"),
            (lambda r: r.log_metrics({"ok": 1, "x" * 251: 1}), InvalidInputError, "251"),
            (lambda r: r.log_metrics({"ok": 1, "m": "0.5"}), InvalidInputError, "'m'"),
            (lambda r: r.log_metrics({"ok": 1, "m": None}), InvalidInputError, "'m'"),
            (lambda r: r.log_metrics({"ok": 1, "m": True}), InvalidInputError, "bool"),
            (lambda r: r.log_metrics({"ok": 1}, step=1.5), InvalidInputError, "step 1.5"),
            (lambda r: r.log_metrics({"ok": 1}, step=-1), InvalidInputError, "out of range"),
            (lambda r: r.log_params({"ok": 1, "/abs": 1}), InvalidInputError, "path-like"),
            (lambda r: r.log_params({"ok": 1, "lr": 0.2}), ParamConflictError, "'lr'"),
            (lambda r: r.set_tags({"ok": 1, "a/": 1}), InvalidInputError, "path-like"),
            (lambda r: r.log_artifact("no/such.bin"), ArtifactNotFoundError, "no/such.bin"),
            (lambda r: r.log_artifact(__file__, "../up"), InvalidInputError, "'../up'"),
        ],
        ids=[
            "metric-dotdot",
            "metric-double-slash",
            "metric-bad-char",
            "metric-too-long",
            "metric-string",
            "metric-none",
            "metric-bool",
            "float-step",
            "negative-step",
            "param-absolute",
            "param-conflict",
            "tag-trailing-slash",
            "missing-artifact",
            "artifact-path-escapes",
        ],
    )
    def test_bad_input_is_rejected_whole_and_nothing_is_lost(
        self,
        tracker: BaseExperimentTracker,
        reader: RunReader,
        tmp_path: Path,
        call: Callable[[Any], object],
        error: type[Exception],
        message: str,
    ) -> None:
        (tmp_path / "kept.txt").write_text("kept")
        with tracker.start_run() as run:
            run.log_params({"lr": 0.1})
            run.log_metrics({"loss": 1.0}, step=0)
            run.set_tags({"stage": "dev"})
            run.log_artifact(tmp_path / "kept.txt")
            with pytest.raises(error, match=message):
                call(run)
            run.log_metrics({"loss": 0.5}, step=1)
        for record in self.both(tracker, reader, run.id):
            assert record.params == {"lr": "0.1"}
            assert set(record.metrics) == {"loss"}
            assert_points(points(record, "loss"), [(0, 1.0), (1, 0.5)])
            assert record.tags["stage"] == "dev"
            assert "ok" not in record.tags
            assert record.artifacts == ["kept.txt"]
            assert record.status is RunStatus.FINISHED

    # -- config ------------------------------------------------------------------------

    def test_a_tracker_from_yaml_equals_one_built_in_code(
        self,
        tracker: BaseExperimentTracker,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        config: dict[str, Any] = {}
        for field, value in tracker.config.model_dump(mode="json").items():
            secret = getattr(tracker.config, field)
            if isinstance(secret, SecretStr):
                variable = f"TRACKSTACK_CONFORMANCE_{field.upper()}"
                monkeypatch.setenv(variable, secret.get_secret_value())
                config[field] = f"${{{variable}}}"
            elif value is not None:
                config[field] = value
        document = {
            "experiment_tracker": {"flavor": tracker.flavor, "name": tracker.name, "config": config}
        }
        path = tmp_path / "tracker.yaml"
        path.write_text(yaml.safe_dump(document))
        loaded = load_tracker(path)
        assert type(loaded) is type(tracker)
        assert loaded.name == tracker.name
        assert loaded.flavor == tracker.flavor
        assert loaded.config == tracker.config
