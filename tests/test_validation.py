"""Every bad input gets a clear error naming it, and nothing logged before is lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from trackstack.errors import ArtifactNotFoundError, InvalidInputError
from trackstack.experiment_trackers import Capabilities, Run
from trackstack.local import LocalExperimentTrackerFlavor
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.stack import StackComponent
from trackstack.validation import check_key


def log_baseline(run: Run, tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("kept")
    run.log_params({"lr": 0.1})
    run.log_metrics({"loss": 1.0}, step=0)
    run.set_tags({"stage": "dev"})
    run.log_artifact(tmp_path / "kept.txt")


def assert_baseline_intact(tracker: LocalExperimentTracker, run: Run) -> None:
    record = tracker.get_run(run.id)
    assert record.params == {"lr": "0.1"}
    assert [(p.step, p.value) for p in record.metrics["loss"]] == [(0, 1.0)]
    assert list(record.metrics) == ["loss"]
    assert record.tags == {"stage": "dev"}
    assert record.artifacts == ["kept.txt"]


BAD_KEYS = [
    ("", "empty"),
    ("../x", "path-like"),
    ("a//b", "path-like"),
    ("/abs", "path-like"),
    ("a/", "path-like"),
    ("./x", "path-like"),
    ("a/../b", "path-like"),
    ("bad*char", "'\\*'"),
    ("tab\there", "'\\\\t'"),
    ("x" * 251, "251 characters"),
]

# The calls take Any: most of them pass what the signatures forbid, on purpose.
BAD_CALLS: list[tuple[str, Callable[[Any], object], type[Exception], str]] = [
    *[
        (
            f"metric key {key[:10]!r}",
            lambda r, k=key: r.log_metrics({"ok": 1, k: 1}),
            InvalidInputError,
            why,
        )
        for key, why in BAD_KEYS
    ],
    *[
        (
            f"param key {key[:10]!r}",
            lambda r, k=key: r.log_params({"ok": 1, k: 1}),
            InvalidInputError,
            why,
        )
        for key, why in BAD_KEYS
    ],
    *[
        (
            f"tag key {key[:10]!r}",
            lambda r, k=key: r.set_tags({"ok": 1, k: 1}),
            InvalidInputError,
            why,
        )
        for key, why in BAD_KEYS
    ],
    (
        "non-string key",
        lambda r: r.log_metrics({"ok": 1, 3: 1}),
        InvalidInputError,
        "must be strings",
    ),
    ("nested bad key", lambda r: r.log_params({"a": {"b/": 1}}), InvalidInputError, "'a.b/'"),
    ("string value", lambda r: r.log_metrics({"ok": 1, "m": "0.5"}), InvalidInputError, "'m'.*str"),
    ("None value", lambda r: r.log_metrics({"ok": 1, "m": None}), InvalidInputError, "NoneType"),
    ("bool value", lambda r: r.log_metrics({"ok": 1, "m": True}), InvalidInputError, "bool"),
    (
        "numpy bool",
        lambda r: r.log_metrics({"ok": 1, "m": np.bool_(True)}),
        InvalidInputError,
        "bool",
    ),
    ("complex", lambda r: r.log_metrics({"ok": 1, "m": 1j}), InvalidInputError, "complex"),
    ("list value", lambda r: r.log_metrics({"ok": 1, "m": [1.0]}), InvalidInputError, "list"),
    (
        "1-d array",
        lambda r: r.log_metrics({"ok": 1, "m": np.ones(2)}),
        InvalidInputError,
        "ndarray",
    ),
    ("float step", lambda r: r.log_metrics({"ok": 1}, step=1.5), InvalidInputError, "step 1.5"),
    (
        "whole float step",
        lambda r: r.log_metrics({"ok": 1}, step=2.0),
        InvalidInputError,
        r"int\(2.0\)",
    ),
    (
        "negative step",
        lambda r: r.log_metrics({"ok": 1}, step=-1),
        InvalidInputError,
        "out of range",
    ),
    (
        "huge step",
        lambda r: r.log_metrics({"ok": 1}, step=2**63),
        InvalidInputError,
        "out of range",
    ),
    ("bool step", lambda r: r.log_metrics({"ok": 1}, step=True), InvalidInputError, "bool"),
    ("string step", lambda r: r.log_metrics({"ok": 1}, step="3"), InvalidInputError, "str"),
    ("metrics not a dict", lambda r: r.log_metrics([("m", 1)]), InvalidInputError, "dict"),
    ("params not a dict", lambda r: r.log_params(["lr"]), InvalidInputError, "dict"),
    ("tags not a dict", lambda r: r.set_tags("stage"), InvalidInputError, "dict"),
    ("param conflict", lambda r: r.log_params({"new": 1, "lr": 0.2}), InvalidInputError, "'lr'"),
    (
        "conflict inside one call",
        lambda r: r.log_params({"a.b": 1, "a": {"b": 2}}),
        InvalidInputError,
        "'a.b' is given twice",
    ),
    (
        "missing artifact",
        lambda r: r.log_artifact("no/such/file.bin"),
        ArtifactNotFoundError,
        "no/such/file.bin",
    ),
    (
        "escaping artifact_path",
        lambda r: r.log_artifact(__file__, artifact_path="../outside"),
        InvalidInputError,
        "'../outside'",
    ),
    ("artifact not a path", lambda r: r.log_artifact(3), InvalidInputError, "int"),
]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [pytest.param(call, error, message, id=name) for name, call, error, message in BAD_CALLS],
)
def test_bad_input_is_rejected_whole(
    tracker: LocalExperimentTracker,
    tmp_path: Path,
    call: Callable[[Any], object],
    error: type[Exception],
    message: str,
) -> None:
    with tracker.start_run() as run:
        log_baseline(run, tmp_path)
        with pytest.raises(error, match=message):
            call(run)
        run.log_metrics({"loss": 0.5}, step=1)  # the run goes on after the error
    record = tracker.get_run(run.id)
    assert [p.value for p in record.metrics["loss"]] == [1.0, 0.5]
    assert set(record.metrics) == {"loss"}
    assert record.params == {"lr": "0.1"}
    assert record.tags == {"stage": "dev"}
    assert record.artifacts == ["kept.txt"]


def test_error_messages_say_what_is_allowed() -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_key("../x", "metric")
    text = str(caught.value)
    assert "'../x'" in text
    assert "letters and digits" in text
    assert "at most 250" in text


def test_unicode_keys_and_allowed_punctuation_pass(tracker: LocalExperimentTracker) -> None:
    keys = ["loss", "train/loss", "val:acc", "lr schedule", "ñandú_μ-2.x", "a" * 250]
    with tracker.start_run() as run:
        run.log_metrics(dict.fromkeys(keys, 1.0), step=0)
        run.log_params(dict.fromkeys(keys, "v"))
        run.set_tags(dict.fromkeys(keys, "v"))
    record = tracker.get_run(run.id)
    assert set(record.metrics) == set(record.params) == set(record.tags) == set(keys)


class LimitedTracker(LocalExperimentTracker):
    capabilities: ClassVar[Capabilities] = Capabilities(max_param_length=10, max_tag_length=5)


class LimitedFlavor(LocalExperimentTrackerFlavor):
    @property
    def implementation_class(self) -> type[StackComponent]:
        return LimitedTracker


def test_values_longer_than_the_backend_stores_are_rejected_not_truncated(
    tmp_path: Path,
) -> None:
    tracker = LimitedFlavor().create("limited", root=tmp_path / "store")
    assert isinstance(tracker, LimitedTracker)
    with tracker.start_run() as run:
        run.log_params({"short": "x" * 10})
        with pytest.raises(
            InvalidInputError, match=r"'long' has a value of 11 characters.*at most 10"
        ):
            run.log_params({"ok": 1, "long": "x" * 11})
        with pytest.raises(InvalidInputError, match="'t' has a value of 6"):
            run.set_tags({"t": "abcdef"})
    record = tracker.get_run(run.id)
    assert record.params == {"short": "x" * 10}
    assert record.tags == {}
