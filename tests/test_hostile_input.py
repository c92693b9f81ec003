"""Hostile and careless input: refused at the call with a TrackstackError, nothing escapes.

Artifacts that would write outside the run, block the copy for ever or copy the
store into itself; params and tags that cannot become text; config files built
to exhaust the loader. After each refusal the run goes on and what was logged
before is still there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import trackstack
from trackstack.errors import (
    ArtifactNotFoundError,
    BackendError,
    ConfigError,
    InvalidInputError,
    TrackstackError,
)
from trackstack.local.tracker import LocalExperimentTracker


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def files_besides_journals(folder: Path) -> set[str]:
    """Every file but the run journals, which come and go with the runs."""
    return {name for name in files_under(folder) if "/.trackstack/journal/" not in f"/{name}"}


@pytest.fixture
def sources(isolated_cwd: Path) -> Path:
    """A working folder of hostile artifact sources beside ordinary ones."""
    (isolated_cwd / "evil" / "sub").mkdir(parents=True)
    (isolated_cwd / "evil" / "sub" / "model.pkl").write_text("attacker")
    (isolated_cwd / "good").mkdir()
    (isolated_cwd / "good" / "a.txt").write_text("a")
    os.mkfifo(isolated_cwd / "pipe")
    (isolated_cwd / "with-pipe").mkdir()
    (isolated_cwd / "with-pipe" / "first.txt").write_text("first")
    os.mkfifo(isolated_cwd / "with-pipe" / "pipe")
    (isolated_cwd / "zeros").symlink_to("/dev/zero")
    (isolated_cwd / "loop").mkdir()
    (isolated_cwd / "loop" / "again").symlink_to(isolated_cwd / "loop")
    (isolated_cwd / "dangling").mkdir()
    (isolated_cwd / "dangling" / "gone").symlink_to(isolated_cwd / "nowhere")
    return isolated_cwd


HOSTILE = [
    ("evil/sub/..", "no name of its own"),
    (".", "no name of its own"),
    ("pipe", "is a FIFO"),
    ("with-pipe", "'with-pipe/pipe' is a FIFO"),
    ("/dev/zero", "is a character device"),
    ("zeros", "is a character device"),
    ("loop", "links back to a folder above it"),
    ("dangling", "'dangling/gone' cannot be read"),
]


@pytest.mark.parametrize(("source", "reason"), HOSTILE)
def test_a_hostile_artifact_is_refused_before_anything_is_copied(
    tracker: LocalExperimentTracker, sources: Path, tmp_path: Path, source: str, reason: str
) -> None:
    victim = tracker.start_run()
    victim.log_artifact(sources / "good" / "a.txt")
    victim.end()
    run = tracker.start_run()
    run.log_metrics({"before": 1.0}, step=0)
    outside = files_besides_journals(tmp_path)
    with pytest.raises(InvalidInputError, match=reason):
        run.log_artifact(source)
    run.log_metrics({"after": 2.0}, step=1)
    run.end()
    assert files_besides_journals(tmp_path) == outside, "the refused call wrote something"
    record = tracker.get_run(run.id)
    assert record.artifacts == []
    assert set(record.metrics) == {"before", "after"}
    assert tracker.get_run(victim.id).artifacts == ["a.txt"]
    assert (tracker.store.artifact_dir(victim.id) / "a.txt").read_text() == "a"


def test_a_folder_holding_the_store_or_the_journal_is_refused(
    tracker: LocalExperimentTracker, tmp_path: Path, isolated_cwd: Path
) -> None:
    run = tracker.start_run()
    with pytest.raises(InvalidInputError, match="contains this tracker's own"):
        run.log_artifact(tmp_path)  # holds the store
    with pytest.raises(InvalidInputError, match="contains this tracker's own"):
        run.log_artifact(isolated_cwd / ".trackstack")  # holds the default journal
    with pytest.raises(InvalidInputError, match="contains this tracker's own"):
        run.log_artifact(tmp_path / "store")
    run.end()
    assert tracker.get_run(run.id).artifacts == []


def test_a_missing_artifact_names_where_it_looked(tracker: LocalExperimentTracker) -> None:
    with tracker.start_run() as run, pytest.raises(ArtifactNotFoundError, match="does not exist"):
        run.log_artifact("no-such-file")


def test_a_directory_upload_that_fails_half_way_leaves_no_partial_copy(
    tracker: LocalExperimentTracker, isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = isolated_cwd / "checkpoints"
    folder.mkdir()
    for index in range(5):
        (folder / f"part-{index}.bin").write_bytes(b"x" * 100)
    real_copy = shutil.copyfile
    copied: list[str] = []

    def copy_then_fail(source: str, target: str, **kwargs: Any) -> object:
        if len(copied) == 2:
            raise OSError("I/O error reading the third file")
        copied.append(source)
        return real_copy(source, target, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copy_then_fail)
    run = tracker.start_run()
    with pytest.raises(BackendError, match="third file"):
        run.log_artifact(folder)
    monkeypatch.undo()
    assert tracker.get_run(run.id).artifacts == []
    assert files_under(tracker.store.artifact_dir(run.id).parent) == set()
    run.log_artifact(folder)  # once it can be read, the whole folder lands
    run.end()
    assert tracker.get_run(run.id).artifacts == [f"checkpoints/part-{i}.bin" for i in range(5)]


def test_logging_a_folder_twice_merges_it_and_a_file_into_a_folder_of_its_name(
    tracker: LocalExperimentTracker, sources: Path
) -> None:
    with tracker.start_run() as run:
        run.log_artifact(sources / "good")
        (sources / "good" / "b.txt").write_text("b")
        run.log_artifact(sources / "good")
        run.log_artifact(sources / "evil" / "sub" / "model.pkl", "good")
    assert tracker.get_run(run.id).artifacts == ["good/a.txt", "good/b.txt", "good/model.pkl"]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class NotText:
    def __str__(self) -> Any:
        return 42


def circular_list() -> list[Any]:
    items: list[Any] = []
    items.append(items)
    return items


def circular_dict() -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    return mapping


def deep_dict(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    node["a"] = 1
    return root


def deep_list(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"opt": Unprintable()}, "'opt'"),
        ({"opt": NotText()}, "'opt'"),
        ({"layers": circular_list()}, "'layers'"),
        (circular_dict(), "'self'"),
        ({"model": {"head": Unprintable()}}, "'model.head'"),
        ({"tree": deep_list(5000)}, "'tree'"),
        (deep_dict(3000), "param key"),
    ],
    ids=[
        "raising-str",
        "non-str-str",
        "circular-list",
        "circular-dict",
        "nested",
        "deep-list",
        "deep-dict",
    ],
)
def test_params_that_cannot_become_text_are_refused_naming_the_key(
    tracker: LocalExperimentTracker, params: dict[str, Any], named: str
) -> None:
    with tracker.start_run() as run:
        run.log_params({"lr": 0.1})
        with pytest.raises(InvalidInputError, match=named):
            run.log_params(params)
        run.log_params({"batch": 32})
    assert tracker.get_run(run.id).params == {"lr": "0.1", "batch": "32"}


@pytest.mark.parametrize(
    "value",
    [Unprintable(), NotText(), circular_list(), deep_list(5000)],
    ids=["raising-str", "non-str-str", "circular-list", "deep-list"],
)
def test_tags_that_cannot_become_text_are_refused_naming_the_key(
    tracker: LocalExperimentTracker, value: object
) -> None:
    with tracker.start_run() as run:
        run.set_tags({"kept": "yes"})
        with pytest.raises(InvalidInputError, match="tag 'bad'"):
            run.set_tags({"bad": value, "fine": 1})
    assert tracker.get_run(run.id).tags == {"kept": "yes"}


def test_a_metric_value_whose_conversion_raises_is_refused(
    tracker: LocalExperimentTracker,
) -> None:
    class Sneaky(float):
        def __float__(self) -> float:
            raise RuntimeError("not today")

        def __repr__(self) -> str:
            raise RuntimeError("nor this")

    with tracker.start_run() as run:
        with pytest.raises(InvalidInputError, match="metric 'm'"):
            run.log_metrics({"m": Sneaky(1.0)}, step=0)
        run.log_metrics({"m": 2.0}, step=1)
    assert [p.value for p in tracker.get_run(run.id).metrics["m"]] == [2.0]


def failed_validation(path: Path) -> str:
    """What `trackstack config validate` printed for a file it must reject."""
    cli = subprocess.run(
        [sys.executable, "-m", "trackstack", "config", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode != 0
    return cli.stdout + cli.stderr


ALIAS_BOMB = textwrap.dedent("""\
    experiment_tracker:
      flavor: local
      config:
        a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
        a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]
        a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]
        a3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]
        a4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
        a5: &a5 [*a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4]
        a6: &a6 [*a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5]
        a7: &a7 [*a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6]
        a8: &a8 [*a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7]
    """)


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("bomb.yaml", ALIAS_BOMB, "expands to more than 10,000 values"),
        ("deep.yaml", "experiment_tracker: " + "[" * 3000 + "]" * 3000, "nests deeper"),
        ("deep.toml", "x = " + "[" * 3000 + "]" * 3000, "nests deeper"),
        (
            "wide.yaml",
            "experiment_tracker:\n  flavor: local\n  config: " + "[" * 40 + "]" * 40,
            "nests deeper than 32",
        ),
        ("huge.yaml", "# padding\n" * 200_000, "larger than 1,048,576 bytes"),
    ],
    ids=["bomb.yaml", "deep.yaml", "deep.toml", "wide.yaml", "huge.yaml"],  # not the texts:
    # the test's id goes into $PYTEST_CURRENT_TEST, and a 2 MB one stops any child starting
)
def test_a_config_file_built_to_exhaust_the_loader_is_a_config_error(
    isolated_cwd: Path, name: str, text: str, reason: str
) -> None:
    path = isolated_cwd / name
    path.write_text(text)
    # In a child with a bound, so that a loader that does expand fails instead of hanging.
    code = (
        "import sys, trackstack\n"
        "from trackstack.errors import ConfigError\n"
        "try:\n    trackstack.load_tracker(sys.argv[1])\n"
        "except ConfigError as error:\n    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert reason in done.stdout
    assert str(path) in done.stdout
    assert len(done.stdout) < 1000
    said = failed_validation(path)
    assert reason in said
    assert len(said) < 2000


def test_a_config_dict_that_contains_itself_is_a_config_error() -> None:
    config: dict[str, Any] = {"flavor": "local", "config": {}}
    config["config"]["loop"] = config
    with pytest.raises(ConfigError, match="nests deeper"):
        trackstack.load_tracker(config)


CANARY = "canary-3f9c1e-not-for-your-eyes"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("  log_on: ${LEAKY}\n  flavor: local\n", "log_on"),
        ("  flavor: ${LEAKY}\n", "flavor"),
        ("  flavor: local\n  config:\n    root: [${LEAKY}]\n", "root"),
        ("  flavor: local\n  config:\n    unknown: ${LEAKY}\n", "unknown"),
    ],
)
def test_a_value_read_from_the_environment_is_never_echoed(
    isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch, line: str, field: str
) -> None:
    monkeypatch.setenv("LEAKY", CANARY)
    path = isolated_cwd / "trackstack.yaml"
    path.write_text("experiment_tracker:\n" + line)
    with pytest.raises(TrackstackError) as raised:
        trackstack.load_tracker(path)
    assert CANARY not in str(raised.value)
    assert field in str(raised.value)
    assert CANARY not in failed_validation(path)
