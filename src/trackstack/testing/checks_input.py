"""Bad input is refused whole with nothing lost; a tracker from YAML equals one built in code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from trackstack.config import load_tracker
from trackstack.enums import RunStatus
from trackstack.errors import ArtifactNotFoundError, InvalidInputError, ParamConflictError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.testing.base import SuiteBase, assert_points, points
from trackstack.testing.readers import RunReader

__all__ = ["InputChecks"]


class InputChecks(SuiteBase):
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
        members = getattr(tracker, "trackers", None)  # a fan-out: a list of trackers
        if members is None:
            document: dict[str, Any] = {_SECTION: _written(tracker, monkeypatch, "")}
        else:
            document = {
                _MEMBERS: [_written(m, monkeypatch, f"{i}_") for i, m in enumerate(members)]
            }
        path = tmp_path / "tracker.yaml"
        path.write_text(yaml.safe_dump(document))
        loaded = load_tracker(path)
        assert type(loaded) is type(tracker)
        assert loaded.name == tracker.name
        assert loaded.flavor == tracker.flavor
        pairs = zip(getattr(loaded, "trackers", [loaded]), members or [tracker], strict=True)
        for built, original in pairs:
            assert type(built) is type(original)
            assert built.config == original.config


def _written(
    tracker: BaseExperimentTracker, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> dict[str, Any]:
    """The tracker as a config file's section, its secrets read through ``${VAR}``."""
    config: dict[str, Any] = {}
    for field, value in tracker.config.model_dump(mode="json").items():
        secret = getattr(tracker.config, field)
        if isinstance(secret, SecretStr):
            variable = f"TRACKSTACK_CONFORMANCE_{prefix}{field.upper()}"
            monkeypatch.setenv(variable, secret.get_secret_value())
            config[field] = f"${{{variable}}}"
        elif value is not None:
            config[field] = value
    return {"flavor": tracker.flavor, "name": tracker.name, "config": config}


_SECTION = "experiment_tracker"
_MEMBERS = "experiment_trackers"
