"""A bug only in the sender process's path fails the suite: its metric checks go through it.

The adapter is MLflow's, broken where it runs in the sender process (after
``backend_prepare_sender``): it drops the last point of every batch there. The
same checks through the run's own thread pass, so only the sender-process path
can catch it.
"""

from __future__ import annotations

import pytest

MODULE = """
import pytest

from trackstack_mlflow.flavor import MLFlowExperimentTrackerFlavor
from trackstack_mlflow.testing import MlflowClientReader
from trackstack_mlflow.tracker import MLFlowExperimentTracker
from trackstack.testing import TrackerConformance


class Broken(MLFlowExperimentTracker):
    def backend_prepare_sender(self):
        super().backend_prepare_sender()
        self.in_sender_process = True

    def backend_log_metrics(self, run_id, points):
        if getattr(self, "in_sender_process", False):
            points = points[:-1]
        super().backend_log_metrics(run_id, points)


class Flavor(MLFlowExperimentTrackerFlavor):
    name = "brokenmlflow"
    implementation_class = Broken


class TestBroken(TrackerConformance):
    @pytest.fixture
    def tracker(self, tmp_path_factory):
        store = tmp_path_factory.getbasetemp() / "mlflow.db"
        return Flavor().create("broken", tracking_uri=f"sqlite:///{store}")

    @pytest.fixture
    def reader(self, tracker):
        return MlflowClientReader.for_tracker(tracker)
"""


@pytest.mark.parametrize(("path", "outcome"), [("in-process", 0), ("sender-process", 1)])
def test_a_bug_only_in_the_sender_process_fails_only_through_it(
    pytester: pytest.Pytester, path: str, outcome: int
) -> None:
    pytester.makepyfile(test_broken=MODULE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-q", "-k", f"test_many_points_read_back_exactly and {path}"
    )
    output = result.stdout.str()
    assert result.ret == outcome, output[-3000:]
    if outcome:
        assert "every metric point is stored once" in output, output[-3000:]
