"""Secrets: a canary in every ``SecretStr`` field, looked for everywhere a run shows.

The suite does not trust the configured secrets to exist: it builds trackers
whose secret fields hold canaries of its own, uses them as a program would,
and looks for the canaries, as they are, in base64 and as basic auth's
``user:password`` pairs, in reprs, logs, warnings, standard output and error,
step metadata, urls, errors (with their tracebacks), run data read back both
ways, the tracker's files (store and journal), the environment, and what the
processes it started expose in ``/proc``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import traceback
import uuid
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from trackstack.errors import RunNotFoundError, TrackstackError
from trackstack.experiment_trackers import BaseExperimentTracker, StepRunInfo
from trackstack.secrets import secret_field_names
from trackstack.testing.base import SECRETS, SuiteBase
from trackstack.testing.leaks import descendants, process_texts, revealed
from trackstack.testing.readers import RunReader

__all__ = ["SecretChecks", "canaried_trackers"]

_LARGEST_FILE = 64 << 20


def canaried_trackers(
    tracker: BaseExperimentTracker, fields: list[str]
) -> tuple[list[tuple[BaseExperimentTracker, list[str]]], list[str]]:
    """Copies of ``tracker`` with canaries in as many secret fields as its config accepts.

    All fields at once first, then each alone, then pairs (a username may need
    its password); returns the copies with their canaries, and the fields no
    valid config could hold a canary in.
    """
    base = tracker.config.model_dump()
    built: list[tuple[BaseExperimentTracker, list[str]]] = []
    covered: set[str] = set()
    subsets = [tuple(fields), *((f,) for f in fields), *itertools.combinations(fields, 2)]
    for subset in subsets:
        if set(subset) <= covered:
            continue
        canaries = {field: f"canary{uuid.uuid4().hex}00" for field in subset}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a plain-text secret warning is not the point
                config = type(tracker.config).model_validate(
                    {**base, **{field: SecretStr(value) for field, value in canaries.items()}}
                )
        except ValidationError:
            continue
        copy = type(tracker)(**{**tracker.identity(), "config": config})
        copy.journal_dir = tracker.journal_dir
        built.append((copy, list(canaries.values())))
        covered.update(subset)
    return built, [field for field in fields if field not in covered]


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


def _kept(tracker: BaseExperimentTracker) -> Iterator[str]:
    """What the tracker left behind on this machine: its files (store, journal), the
    environment, and what any process it started can read of its own."""
    for own in tracker.protected_paths():
        files = own.rglob("*") if own.is_dir() else [own]
        for path in files:
            if path.is_file() and path.stat().st_size <= _LARGEST_FILE:
                yield f"{path}: " + path.read_bytes().decode("utf-8", errors="replace")
    yield f"os.environ: {dict(os.environ)}"
    if Path("/proc").is_dir():
        for pid in descendants():
            yield f"process {pid}: " + process_texts(pid).decode("utf-8", errors="replace")


def _shown(tracker: BaseExperimentTracker, reader: RunReader, tmp_path: Path) -> Iterator[str]:
    """Everything a user, a log or a UI may show of ``tracker`` and a run it logs."""
    config = tracker.config
    yield from (repr(tracker), str(tracker), repr(config), str(config))
    yield from (config.model_dump_json(), str(config.model_dump()))
    info = StepRunInfo(
        pipeline_name="secrets", run_name="secrets-1", step_name="s", run_id=uuid.uuid4().hex
    )
    try:
        tracker.prepare_step_run(info)
        yield repr(tracker.get_step_run_metadata(info))
        tracker.cleanup_step_run(info, step_failed=False)
        (tmp_path / "artifact.txt").write_text("artifact")
        with tracker.start_run(tags={"kind": "secrets"}) as run:
            yield str(run.url)
            yield repr(run)
            run.log_params({"lr": 0.1})
            run.log_metrics({"loss": 0.5}, step=0)
            run.set_tags({"stage": "dev"})
            run.log_artifact(tmp_path / "artifact.txt")
            try:
                run.log_metrics({"../x": 1.0})
            except TrackstackError as error:
                yield _error_text(error)
            try:
                run.log_artifact(tmp_path / "no-such-file")
            except TrackstackError as error:
                yield _error_text(error)
        for run_id in (run.id, tracker.step_run(info).id):
            record = tracker.get_run(run_id)
            yield repr(record)
            yield repr(record.to_dict())
            with contextlib.suppress(RunNotFoundError):  # the reader reads another store
                yield repr(reader.read(run_id).to_dict())
        yield repr([record.to_dict() for record in tracker.list_runs()[:5]])
    except TrackstackError as error:  # the backend may refuse a canary: its error is shown too
        yield _error_text(error)
    try:
        tracker.get_run("0123456789abcdef0123456789abcdef")
    except TrackstackError as error:
        yield _error_text(error)
    folder = tracker.journal_folder()
    for path in folder.rglob("*") if folder.is_dir() else []:
        if path.is_file():
            yield path.read_bytes().decode("utf-8", errors="replace")


class SecretChecks(SuiteBase):
    def test_secrets_appear_nowhere(
        self,
        tracker: BaseExperimentTracker,
        reader: RunReader,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        fields = sorted(secret_field_names(type(tracker.config)))
        if not fields:
            pytest.skip(
                f"the {tracker.flavor} flavor's config has no SecretStr field: no secret to check"
            )
        copies, unset = canaried_trackers(tracker, fields)
        configured = [
            value.get_secret_value()
            for value in dict(tracker.config).values()
            if isinstance(value, SecretStr) and value.get_secret_value()
        ]
        if not copies and not configured:
            pytest.skip(
                f"no config of the {tracker.flavor} flavor accepts a canary in its secret fields "
                f"{fields}, and none is set: no secret to check"
            )
        print(
            f"secret fields {fields}: given the suite's canary: "
            f"{sorted(set(fields) - set(unset))}; not settable: {unset}; "
            f"set in the configured tracker: {len(configured)}"
        )
        caplog.set_level(logging.DEBUG)
        leaks: list[str] = []
        canaries = [value for _, values in copies for value in values]
        every = [*configured, *canaries]
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            for checked, _ in [(tracker, configured), *copies]:
                leaks += _leaks(_shown(checked, reader, tmp_path), every)
                # Only the suite's canaries in what is kept: a configured secret read through
                # ${VAR} is in the environment by the user's own doing.
                leaks += _leaks(_kept(checked), canaries)
        output = capfd.readouterr()
        texts = [
            *(f"a log record: {r.getMessage()}" for r in caplog.records),
            *(f"a warning: {w.message}" for w in warned),
            f"standard output: {output.out}",
            f"standard error: {output.err}",
        ]
        leaks += _leaks(texts, every)
        assert not leaks, f"broken promise: {SECRETS}; found in {len(leaks)} place(s): {leaks[:3]}"


def _leaks(texts: Iterable[str], secrets: list[str]) -> list[str]:
    """Where in ``texts`` a secret shows: the start of the text, and around the secret."""
    found = []
    for text in texts:
        secret = revealed(text, secrets)
        if secret is not None:
            at = max(text.find(secret), 0)
            found.append(f"{text[:60]!r} ... {text[max(0, at - 60) : at + 100]!r}")
    return found
