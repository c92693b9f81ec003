"""Params, tags, and every name exactly as given: case, Unicode, ``:`` and ``/``, spaces."""

from __future__ import annotations

import re
import uuid

import pytest

from trackstack.errors import ParamConflictError
from trackstack.experiment_trackers import BaseExperimentTracker
from trackstack.testing.base import EXACT, PARAMS, TAGS, SuiteBase, assert_points, points
from trackstack.testing.readers import RunReader

__all__ = ["ValueChecks"]

# Characters a careless adapter rewrites: case, accents, CJK, emoji, ":" and "/",
# spaces (also around), empty values, and those NFKC folds (², ﬁ, full width, ①).
FULL_WIDTH = "\uff2c\uff2f\uff33\uff33"
"""LOSS in full-width letters, which NFKC folds to ASCII."""
METRIC_KEYS = (
    "Loss/Train", "ÉPOCH:Acc", "准确率 top-1", "MiXeD Case-val_2", "ñ/ü/ß:Ω", "m²", "ﬁt",
    FULL_WIDTH, "①",
)  # fmt: skip
PARAMS_AS_GIVEN = {
    "Optimizer Name": "Adam β1=0.9",
    "模型": "小型 🚀",
    "path:/to/x": "x:y/z",
    "UPPER_case": "MiXeD Case",
    "emoji value": "✨🚀🧪",
    "padded": "  x  ",
    "empty": "",
    "m²": f"ﬁ ① {FULL_WIDTH}",
}
TAGS_AS_GIVEN = {
    "Team/Sub:Area": "ML:Core/Vision 🚀",
    "Ünïcode": "实验",
    "Space Key": "a b  c",
    "UPPER": "Value",
    " Padded Key ": " padded value ",
    "empty": "",
    "ﬁ²": FULL_WIDTH,
}
RUN_NAME = "  Run Ünï 实验 🚀 #1 (Final) "
LONGEST = 8000
"""Long values are checked up to the backend's declared limit, or this many characters."""


class ValueChecks(SuiteBase):
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
            assert record.params == {"lr": "0.1", "opt.name": "sgd"}, f"broken promise: {PARAMS}"

    def test_tags_set_and_overwritten(
        self, tracker: BaseExperimentTracker, reader: RunReader
    ) -> None:
        with tracker.start_run(tags={"stage": "dev", "team": "a"}) as run:
            run.set_tags({"stage": "prod", "size": 3})
        expected = {"stage": "prod", "team": "a", "size": "3"}
        stored = reader.read(run.id)
        assert expected.items() <= stored.tags.items(), f"broken promise: {TAGS}; {stored.tags}"
        assert tracker.get_run(run.id).tags == expected, f"broken promise: {TAGS}"

    def test_names_keys_and_values_are_stored_exactly_as_given(
        self, tracker: BaseExperimentTracker, reader: RunReader, delivery: str
    ) -> None:
        caps = tracker.capabilities
        pattern = caps.key_pattern
        keys = [k for k in METRIC_KEYS if pattern is None or re.fullmatch(pattern, k)]
        experiment = f" Ünïcode Expérience 实验 🚀 {uuid.uuid4().hex[:8]} "
        params = {**PARAMS_AS_GIVEN, "long": "p" * min(caps.max_param_length or LONGEST, LONGEST)}
        tags = {**TAGS_AS_GIVEN, "long": "t" * min(caps.max_tag_length or LONGEST, LONGEST)}
        start = {"At": "Start", "Empty At": ""}
        with self.delivered(
            tracker, delivery, experiment=experiment, run_name=RUN_NAME, tags=start
        ) as run:
            run.log_params(params)  # first: params and tags go at once, points wait
            run.set_tags(tags)
            for step in range(3):
                run.log_metrics({key: index + step / 10 for index, key in enumerate(keys)}, step)
        for record in self.both(tracker, reader, run.id):
            seen = f"stored experiment {record.experiment!r}, name {record.name!r}"
            assert record.experiment == experiment, f"broken promise: {EXACT}; {seen}"
            assert record.name == RUN_NAME, f"broken promise: {EXACT}; {seen}"
            assert set(keys) <= set(record.metrics), (
                f"broken promise: {EXACT}; logged metric keys {sorted(keys)}, "
                f"stored {sorted(record.metrics)}"
            )
            for index, key in enumerate(keys):
                assert_points(points(record, key), [(s, index + s / 10) for s in range(3)])
            assert record.params == params, (
                f"broken promise: {EXACT}; {_differences('param', params, record.params)}"
            )
            wanted = {**tags, "At": "Start", "Empty At": ""}
            assert wanted.items() <= record.tags.items(), (
                f"broken promise: {EXACT}; {_differences('tag', wanted, record.tags)}"
            )


def _differences(kind: str, logged: dict[str, str], stored: dict[str, str]) -> str:
    """What differs, values shortened: a long value that was cut shows as its length."""

    def shown(value: str | None) -> str:
        return "missing" if value is None else f"{value[:40]!r} ({len(value)} characters)"

    wrong = [k for k in logged if stored.get(k) != logged[k]]
    return (
        "; ".join(
            f"{kind} {k!r} logged {shown(logged[k])}, stored {shown(stored.get(k))}"
            for k in wrong[:5]
        )
        or f"{kind}s stored {sorted(stored)}, logged {sorted(logged)}"
    )
