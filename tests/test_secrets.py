"""Secret config fields never show: not in reprs, errors, metadata or backend messages."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

import trackstack
from trackstack.errors import BackendError, ConfigError, PlainTextSecretWarning
from trackstack.experiment_trackers import MetricPoint
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.stack import StackComponent
from trackstack.testing import LocalStoreReader, RunReader, TrackerConformance

TOKEN = "tok-SECRET-1234"
PASSWORD = "pw-SECRET-5678"

pytestmark = pytest.mark.usefixtures("fake_adapter")


def secretive(**config: object) -> LocalExperimentTracker:
    tracker = trackstack.load_tracker({"flavor": "secretive", "config": {"root": "s"} | config})
    assert isinstance(tracker, LocalExperimentTracker)
    return tracker


def test_secret_from_the_environment_does_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TOKEN", TOKEN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker = secretive(token="${FAKE_TOKEN}", warn_about_plain_text_secrets=True)
    assert tracker.config.token.get_secret_value() == TOKEN  # type: ignore[attr-defined]


def test_plain_text_secret_warns_when_asked_naming_the_field_not_the_value() -> None:
    with pytest.warns(PlainTextSecretWarning) as caught:
        secretive(token=TOKEN, password=PASSWORD, warn_about_plain_text_secrets=True)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "'password'" in messages[0]
    assert "'token'" in messages[1]
    assert "${TOKEN}" in messages[1]
    assert not any(TOKEN in m or PASSWORD in m for m in messages)


def test_plain_text_secret_is_quiet_by_default() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        secretive(token=TOKEN)


def test_plain_text_secret_in_code_warns_too() -> None:
    flavor = trackstack.get_flavor("secretive")
    with pytest.warns(PlainTextSecretWarning, match="'token'"):
        flavor.create("x", root="s", token=TOKEN, warn_about_plain_text_secrets=True)


def test_wrongly_typed_secret_is_not_echoed() -> None:
    with pytest.raises(ConfigError, match="field 'token'") as caught:
        secretive(token=["not", TOKEN])
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


class LeakyTracker(LocalExperimentTracker):
    """Fails with the token in its message, as an SDK echoing a URL with credentials might."""

    leak = True

    def backend_log_metrics(self, run_id: str, points: Sequence[tuple[str, MetricPoint]]) -> None:
        if self.leak:
            token = self.config.token.get_secret_value()  # type: ignore[attr-defined]
            raise RuntimeError(f"401 for https://user:{token}@tracker.invalid")
        super().backend_log_metrics(run_id, points)


def test_backend_errors_are_scrubbed_of_secrets() -> None:
    from fake_trackstack_adapter import SecretiveFlavor

    class LeakyFlavor(SecretiveFlavor):
        @property
        def implementation_class(self) -> type[StackComponent]:
            return LeakyTracker

    tracker = LeakyFlavor().create("leaky", root="s", token=TOKEN)
    assert isinstance(tracker, LeakyTracker)
    run = tracker.start_run()
    run.log_metrics({"m": 1})
    with pytest.raises(BackendError) as caught:
        run.flush()
    assert TOKEN not in str(caught.value)
    assert "https://user:**********@tracker.invalid" in str(caught.value)
    tracker.leak = False
    run.end()


class TestSecretiveConformance(TrackerConformance):
    """The whole suite on a flavor with secret fields set: they must appear nowhere."""

    @pytest.fixture
    def tracker(self, tmp_path: Path) -> LocalExperimentTracker:
        built = secretive(root=str(tmp_path / "store"), token=TOKEN, password=PASSWORD)
        assert TOKEN not in repr(built)
        return built

    @pytest.fixture
    def reader(self, tracker: LocalExperimentTracker) -> RunReader:
        return LocalStoreReader(tracker.config.root)
