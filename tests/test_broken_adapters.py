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
}

MODULE = """
import pytest
from pydantic import SecretStr

from trackstack import MetricPoint, RunStatus
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
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-x", "-k", failing_test)
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output[-2000:]
    assert f"TestBroken::{failing_test}" in output
    assert promise in output, output[-3000:]


def test_the_same_adapter_unbroken_passes(pytester: pytest.Pytester) -> None:
    install(pytester, "pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=40, skipped=1)
