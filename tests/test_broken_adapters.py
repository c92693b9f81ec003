"""The suite catches adapters that break a promise, and its failures name the promise.

Each broken adapter is the local tracker with one hook made wrong, as a buggy
adapter would be; the suite runs on it in a pytest session of its own.
"""

from __future__ import annotations

import textwrap

import pytest

BROKEN_HOOKS = {
    "drops-a-point": (
        "def backend_log_metrics(self, run_id, points):\n"
        "    super().backend_log_metrics(run_id, points[:-1])",
        "test_many_points_read_back_exactly",
        "every metric point is stored once",
    ),
    "loses-the-step": (
        "def backend_log_metrics(self, run_id, points):\n"
        "    super().backend_log_metrics(run_id, [(k, MetricPoint(0, p.value, p.timestamp))"
        " for k, p in points])",
        "test_steps_given_and_automatic",
        "with its step and value",
    ),
    "ignores-a-tag": (
        "def backend_set_tags(self, run_id, tags):\n    pass",
        "test_tags_set_and_overwritten",
        "every tag set is stored",
    ),
    "misreports-status": (
        "def backend_end_run(self, run_id, status):\n"
        "    super().backend_end_run(run_id, RunStatus.FINISHED)",
        "test_status_follows_how_the_block_ends",
        "FAILED on an exception",
    ),
    "keeps-a-failed-run-open": (
        "def backend_end_run(self, run_id, status):\n"
        "    if status is RunStatus.FINISHED:\n"
        "        super().backend_end_run(run_id, status)",
        "test_status_follows_how_the_block_ends",
        "stored RUNNING",
    ),
    "truncates-a-param": (
        "def backend_log_params(self, run_id, params):\n"
        "    super().backend_log_params(run_id, {k: ParamValue(p.text[:3], p.value)"
        " for k, p in params.items()})",
        "test_params_of_every_type_are_strings",
        "params are stored whole",
    ),
    "leaks-a-secret": (
        "def run_metadata(self, run):\n"
        "    return {**super().run_metadata(run), 'token': self.config.token.get_secret_value()}",
        "test_secrets_appear_nowhere",
        "secret config values appear in no",
    ),
    "stamps-the-send-time": (
        "def backend_log_metrics(self, run_id, points):\n"
        "    now = time.time()\n"
        "    super().backend_log_metrics(run_id, [(k, MetricPoint(p.step, p.value, now))"
        " for k, p in points])",
        "test_points_keep_the_time_they_were_logged",
        "each metric point keeps the time it was logged at",
    ),
    "stamps-milliseconds": (
        "def backend_log_metrics(self, run_id, points):\n"
        "    super().backend_log_metrics(run_id, [(k, MetricPoint(p.step, p.value,"
        " p.timestamp * 1000)) for k, p in points])",
        "test_points_keep_the_time_they_were_logged",
        "each metric point keeps the time it was logged at",
    ),
    "takes-local-time-for-utc": (
        "def backend_get_run(self, run_id):\n"
        "    record = super().backend_get_run(run_id)\n"
        "    local = lambda t: t and datetime.fromtimestamp(t.timestamp()).replace(tzinfo=UTC)\n"
        "    return dataclasses.replace(record, start_time=local(record.start_time),"
        " end_time=local(record.end_time))",
        "test_start_and_end_times_are_the_real_instants",
        "start and end times are the real instants",
    ),
    "forgets-when-a-failed-run-ended": (
        "def backend_get_run(self, run_id):\n"
        "    record = super().backend_get_run(run_id)\n"
        "    if record.status is RunStatus.FAILED:\n"
        "        return dataclasses.replace(record, end_time=None)\n"
        "    return record",
        "test_start_and_end_times_are_the_real_instants",
        "the end time is missing",
    ),
    "rewrites-keys-like-tensorboardx": (
        "def backend_log_metrics(self, run_id, points):\n"
        "    super().backend_log_metrics(run_id, [(re.sub(r'[^-/\\w.]', '_', k), p)"
        " for k, p in points])",
        "test_names_keys_and_values_are_stored_exactly_as_given",
        "stored exactly as given",
    ),
    "ascii-run-names": (
        "def backend_start_run(self, request):\n"
        "    name = request.run_name and request.run_name.encode('ascii', 'replace').decode()\n"
        "    return super().backend_start_run(dataclasses.replace(request, run_name=name))",
        "test_names_keys_and_values_are_stored_exactly_as_given",
        "stored exactly as given",
    ),
    "lowercases-experiments": (
        "def backend_start_run(self, request):\n"
        "    lower = dataclasses.replace(request, experiment=request.experiment.lower())\n"
        "    return super().backend_start_run(lower)",
        "test_names_keys_and_values_are_stored_exactly_as_given",
        "stored exactly as given",
    ),
    "logs-into-the-latest-run": (
        "def backend_start_run(self, request):\n"
        "    started = super().backend_start_run(request)\n"
        "    type(self).latest = started.id\n"
        "    return started\n"
        "def backend_log_metrics(self, run_id, points):\n"
        "    super().backend_log_metrics(type(self).latest, points)",
        "test_runs_open_at_once_hold_only_their_own_data",
        "runs open at once each hold only what was logged to them",
    ),
    "narrow-steps": (
        "def backend_log_metrics(self, run_id, points):\n"
        "    super().backend_log_metrics(run_id, [(k, MetricPoint(min(p.step, 2**31 - 1),"
        " p.value, p.timestamp)) for k, p in points])",
        "test_largest_steps_are_stored_exactly",
        "steps up to the declared max_step",
    ),
    "forgets-tags-given-on-resume": (
        "def backend_start_run(self, request):\n"
        "    if request.resume_id:\n"
        "        request = dataclasses.replace(request, tags={})\n"
        "    return super().backend_start_run(request)",
        "test_resume_keeps_what_the_run_had_and_goes_on_after_its_highest_step",
        "a resumed run is RUNNING again and keeps",
    ),
    "restarts-the-clock-on-resume": (
        "def backend_start_run(self, request):\n"
        "    started = super().backend_start_run(request)\n"
        "    if request.resume_id:\n"
        "        with sqlite3.connect(self.store.root / 'trackstack.db') as conn:\n"
        "            conn.execute('UPDATE runs SET start_time = ? WHERE id = ?',"
        " (time.time() + 1, started.id))\n"
        "    return started",
        "test_resume_keeps_what_the_run_had_and_goes_on_after_its_highest_step",
        "a resumed run is RUNNING again and keeps",
    ),
    "resumes-after-the-last-point": (
        "def backend_resume_state(self, run_id):\n"
        "    state = super().backend_resume_state(run_id)\n"
        "    series = [p for ps in self.backend_get_run(run_id).metrics.values() for p in ps]\n"
        "    last = max(series, key=lambda p: p.timestamp).step if series else None\n"
        "    return dataclasses.replace(state, last_step=last)",
        "test_resume_keeps_what_the_run_had_and_goes_on_after_its_highest_step",
        "must follow the highest step logged (7), not the last one (3)",
    ),
    "resumes-without-reopening": (
        "def backend_start_run(self, request):\n"
        "    if request.resume_id:\n"
        "        return StartedRun(request.resume_id)\n"
        "    return super().backend_start_run(request)",
        "test_resume_keeps_what_the_run_had_and_goes_on_after_its_highest_step",
        "a resumed run reads FINISHED",
    ),
    "lists-oldest-first": (
        "def backend_list_runs(self, experiment):\n"
        "    return list(reversed(super().backend_list_runs(experiment)))",
        "test_list_runs_newest_first_across_experiments_nested_included",
        "list_runs is newest first across experiments",
    ),
    "lists-no-nested-runs": (
        "def backend_list_runs(self, experiment):\n"
        "    return [r for r in super().backend_list_runs(experiment) if r.parent_id is None]",
        "test_list_runs_newest_first_across_experiments_nested_included",
        "list_runs is newest first across experiments",
    ),
    "lists-every-experiment": (
        "def backend_list_runs(self, experiment):\n    return super().backend_list_runs(None)",
        "test_list_runs_newest_first_across_experiments_nested_included",
        "list_runs is newest first across experiments",
    ),
    "skips-hidden-files": (
        "capabilities = dataclasses.replace(LocalExperimentTracker.capabilities,"
        " artifact_directories=False)\n"
        "def backend_log_artifact(self, run_id, local_path, artifact_path):\n"
        "    if not local_path.name.startswith('.'):\n"
        "        super().backend_log_artifact(run_id, local_path, artifact_path)",
        "test_artifact_files_and_trees_land_byte_for_byte",
        "every file logged is stored, byte for byte",
    ),
    "skips-empty-files": (
        "capabilities = dataclasses.replace(LocalExperimentTracker.capabilities,"
        " artifact_directories=False)\n"
        "def backend_log_artifact(self, run_id, local_path, artifact_path):\n"
        "    if local_path.stat().st_size:\n"
        "        super().backend_log_artifact(run_id, local_path, artifact_path)",
        "test_artifact_files_and_trees_land_byte_for_byte",
        "every file logged is stored, byte for byte",
    ),
    "copies-as-text": (
        "capabilities = dataclasses.replace(LocalExperimentTracker.capabilities,"
        " artifact_directories=False)\n"
        "def backend_log_artifact(self, run_id, local_path, artifact_path):\n"
        "    copy = Path(tempfile.mkdtemp()) / local_path.name\n"
        "    copy.write_bytes(local_path.read_bytes().replace(b'\\r\\n', b'\\n'))\n"
        "    super().backend_log_artifact(run_id, copy, artifact_path)",
        "test_artifact_files_and_trees_land_byte_for_byte",
        "the backend holds",
    ),
    "ignores-the-artifact-path": (
        "def backend_log_artifact(self, run_id, local_path, artifact_path):\n"
        "    super().backend_log_artifact(run_id, local_path, None)",
        "test_artifact_files_and_trees_land_byte_for_byte",
        "every file logged is stored, byte for byte",
    ),
    "stores-points-only-at-the-end": (
        "def backend_log_metrics(self, run_id, points):\n"
        "    self.__dict__.setdefault('held', []).append((run_id, points))\n"
        "def backend_end_run(self, run_id, status):\n"
        "    for held_id, points in self.__dict__.pop('held', []):\n"
        "        super().backend_log_metrics(held_id, points)\n"
        "    super().backend_end_run(run_id, status)",
        "test_flush_makes_every_point_visible_while_the_run_is_open[in-process]",
        "after flush() every point logged so far is in the backend",
    ),
    "drops-points-of-runs-it-did-not-start": (
        "def backend_start_run(self, request):\n"
        "    started = super().backend_start_run(request)\n"
        "    self.__dict__.setdefault('mine', set()).add(started.id)\n"
        "    return started\n"
        "def backend_log_metrics(self, run_id, points):\n"
        "    if run_id in self.__dict__.get('mine', ()):\n"
        "        super().backend_log_metrics(run_id, points)",
        "test_many_points_read_back_exactly[journal-replay]",
        "every metric point is stored once",
    ),
    "puts-the-token-in-the-url": (
        "def backend_start_run(self, request):\n"
        "    started = super().backend_start_run(request)\n"
        "    token = self.config.token.get_secret_value()\n"
        "    return dataclasses.replace(started, url=f'{started.url}?token={token}')",
        "test_secrets_appear_nowhere",
        "secret config values appear in no",
    ),
    "puts-the-token-in-an-error": (
        "def backend_get_run(self, run_id):\n"
        "    try:\n"
        "        return super().backend_get_run(run_id)\n"
        "    except RunNotFoundError:\n"
        "        token = self.config.token.get_secret_value()\n"
        "        raise RunNotFoundError(f'no run {run_id} (token {token})') from None",
        "test_secrets_appear_nowhere",
        "secret config values appear in no",
    ),
    "puts-the-token-in-a-tag": (
        "def backend_start_run(self, request):\n"
        "    auth = {'auth': self.config.token.get_secret_value()}\n"
        "    return super().backend_start_run(dataclasses.replace(request,"
        " tags={**request.tags, **auth}))",
        "test_secrets_appear_nowhere",
        "secret config values appear in no",
    ),
    "strips-param-values": (
        "def backend_log_params(self, run_id, params):\n"
        "    super().backend_log_params(run_id, {k: ParamValue(p.text.strip(), p.value)"
        " for k, p in params.items()})",
        "test_names_keys_and_values_are_stored_exactly_as_given",
        "param 'padded' logged",
    ),
    "drops-empty-tags": (
        "def backend_set_tags(self, run_id, tags):\n"
        "    super().backend_set_tags(run_id, {k: v for k, v in tags.items() if v})",
        "test_names_keys_and_values_are_stored_exactly_as_given",
        "tag 'empty' logged",
    ),
    "normalizes-keys-nfkc": (
        "def backend_log_metrics(self, run_id, points):\n"
        "    super().backend_log_metrics(run_id, [(unicodedata.normalize('NFKC', k), p)"
        " for k, p in points])",
        "test_names_keys_and_values_are_stored_exactly_as_given",
        "stored exactly as given",
    ),
    "truncates-long-tags": (
        "def backend_set_tags(self, run_id, tags):\n"
        "    super().backend_set_tags(run_id, {k: v[:250] for k, v in tags.items()})",
        "test_names_keys_and_values_are_stored_exactly_as_given",
        "tag 'long' logged",
    ),
    "strips-run-names": (
        "def backend_start_run(self, request):\n"
        "    name = request.run_name.strip() if request.run_name else request.run_name\n"
        "    return super().backend_start_run(dataclasses.replace(request, run_name=name))",
        "test_names_keys_and_values_are_stored_exactly_as_given",
        "stored exactly as given",
    ),
    "finds-any-parent": (
        "def backend_check_run(self, run_id):\n    pass",
        "test_a_parent_that_does_not_exist_is_refused",
        "a run started under a parent that does not exist",
    ),
    "forgets-params-on-resume": (
        "def backend_resume_state(self, run_id):\n"
        "    return dataclasses.replace(super().backend_resume_state(run_id), params={})",
        "test_resume_keeps_what_the_run_had_and_goes_on_after_its_highest_step",
        "did not raise ParamConflictError",
    ),
    "resumes-an-empty-run-at-one": (
        "def backend_resume_state(self, run_id):\n"
        "    state = super().backend_resume_state(run_id)\n"
        "    return dataclasses.replace(state, last_step=state.last_step or 0)",
        "test_a_run_resumed_without_points_starts_at_step_zero",
        "goes on at step 0",
    ),
    "keeps-the-end-time-on-resume": (
        "def backend_start_run(self, request):\n"
        "    started = super().backend_start_run(request)\n"
        "    if request.resume_id:\n"
        "        with sqlite3.connect(self.store.root / 'trackstack.db') as conn:\n"
        "            conn.execute('UPDATE runs SET end_time = start_time + 1 WHERE id = ?',"
        " (started.id,))\n"
        "    return started",
        "test_resume_keeps_what_the_run_had_and_goes_on_after_its_highest_step",
        "a resumed run still ends at",
    ),
    "keeps-old-tags-on-resume": (
        "def backend_start_run(self, request):\n"
        "    if request.resume_id:\n"
        "        old = self.store.get_run(request.resume_id).tags\n"
        "        fresh = {k: v for k, v in request.tags.items() if k not in old}\n"
        "        request = dataclasses.replace(request, tags=fresh)\n"
        "    return super().backend_start_run(request)",
        "test_resume_keeps_what_the_run_had_and_goes_on_after_its_highest_step",
        "tags given on resume are set",
    ),
    "lists-runs-without-their-data": (
        "def backend_list_runs(self, experiment):\n"
        "    return [dataclasses.replace(r, params={}, metrics={})"
        " for r in super().backend_list_runs(experiment)]",
        "test_listed_runs_read_as_they_read_one_by_one",
        "lists params",
    ),
    "lists-one-page": (
        "def backend_list_runs(self, experiment):\n"
        "    return super().backend_list_runs(experiment)[:100]",
        "test_list_runs_returns_every_run_of_a_long_list",
        "130 runs started, list_runs gave 100",
    ),
    "hides-the-name-it-chose": (
        "def backend_start_run(self, request):\n"
        "    if request.run_name is None:\n"
        "        request = dataclasses.replace(request, run_name='chosen-by-the-backend')\n"
        "    return dataclasses.replace(super().backend_start_run(request), name=None)",
        "test_a_name_the_backend_chose_is_the_runs_name",
        "StartedRun.name is the name the backend chose",
    ),
    "prints-the-token": (
        "def backend_start_run(self, request):\n"
        "    print('token', self.config.token.get_secret_value())\n"
        "    return super().backend_start_run(request)",
        "test_secrets_appear_nowhere",
        "standard output",
    ),
    "warns-with-the-token": (
        "def backend_start_run(self, request):\n"
        "    warnings.warn(f'sending {self.config.token.get_secret_value()}')\n"
        "    return super().backend_start_run(request)",
        "test_secrets_appear_nowhere",
        "a warning",
    ),
    "writes-the-token-to-its-store": (
        "def backend_start_run(self, request):\n"
        "    (self.store.root / 'auth.json').write_text(self.config.token.get_secret_value())\n"
        "    return super().backend_start_run(request)",
        "test_secrets_appear_nowhere",
        "auth.json",
    ),
    "exports-the-token": (
        "def backend_start_run(self, request):\n"
        "    os.environ['BROKEN_ADAPTER_TOKEN'] = self.config.token.get_secret_value()\n"
        "    return super().backend_start_run(request)",
        "test_secrets_appear_nowhere",
        "os.environ",
    ),
    "shows-the-token-in-base64": (
        "def backend_get_run(self, run_id):\n"
        "    try:\n"
        "        return super().backend_get_run(run_id)\n"
        "    except RunNotFoundError:\n"
        "        token = self.config.token.get_secret_value()\n"
        "        auth = base64.b64encode(f'api:{token}'.encode()).decode()\n"
        "        raise RunNotFoundError(f'404 (Authorization: Basic {auth})') from None",
        "test_secrets_appear_nowhere",
        "secret config values appear in no",
    ),
    "leaves-the-step-in-the-environment": (
        "def enter_step_run(self, info, run):\n    os.environ['BROKEN_ADAPTER_STEP_RUN'] = run.id",
        "test_step_lifecycle",
        "after the step, the environment differs in ['BROKEN_ADAPTER_STEP_RUN']",
    ),
    "forgets-the-run-id-in-step-metadata": (
        "def run_metadata(self, run):\n    return {'local_run': run.id}",
        "test_step_lifecycle",
        "no <backend>_run_id key holds",
    ),
}

MODULE = """
import base64
import dataclasses
import os
import re
import sqlite3
import tempfile
import time
import unicodedata
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from trackstack import MetricPoint, RunStatus
from trackstack.errors import RunNotFoundError
from trackstack.experiment_trackers import StartedRun
from trackstack.experiment_trackers import ParamValue
from trackstack.local import LocalExperimentTrackerConfig, LocalExperimentTrackerFlavor
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.testing import LocalStoreReader, TrackerConformance


class Config(LocalExperimentTrackerConfig):
    token: SecretStr = SecretStr("tok-SECRET-in-config")


class Broken(LocalExperimentTracker):
{hook}


class Flavor(LocalExperimentTrackerFlavor):
    name = "broken"
    config_class = Config
    implementation_class = Broken


class TestBroken(TrackerConformance):
    @pytest.fixture
    def tracker(self, tmp_path):
        return Flavor().create("broken", root=str(tmp_path / "store"))

    @pytest.fixture
    def reader(self, tracker):
        return LocalStoreReader(tracker.config.root)
"""


def install(pytester: pytest.Pytester, hook: str) -> None:
    """The broken adapter as a module with a flavor registered through an entry point."""
    pytester.makepyfile(test_broken=MODULE.format(hook=textwrap.indent(hook, "    ")))
    info = pytester.mkdir("broken_adapter-1.0.dist-info")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-adapter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[trackstack.flavors]\nbroken = test_broken:Flavor\n")


@pytest.mark.parametrize(
    ("hook", "failing_test", "promise"),
    list(BROKEN_HOOKS.values()),
    ids=list(BROKEN_HOOKS),
)
def test_the_suite_fails_a_broken_adapter_naming_the_promise(
    pytester: pytest.Pytester, hook: str, failing_test: str, promise: str
) -> None:
    install(pytester, hook)
    name, _, variant = failing_test.partition("[")
    chosen = f"{name} and {variant.rstrip(']')}" if variant else name
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-x", "-k", chosen)
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output[-2000:]
    assert f"TestBroken::{failing_test}" in output
    assert promise in output, output[-3000:]


def test_the_same_adapter_unbroken_passes(pytester: pytest.Pytester) -> None:
    install(pytester, "pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rs")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert result.parseoutcomes()["passed"] > 50
    skips = [line for line in result.stdout.lines if line.startswith("SKIPPED")]
    assert skips
    for line in skips:  # only for what the local flavor declares it lacks
        assert "declares sender_process=False" in line or "sdk_active_run=False" in line, line
