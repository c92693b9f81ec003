"""load_tracker: files, dicts, the environment, defaults, and every config error."""

from __future__ import annotations

from pathlib import Path

import pytest

import trackstack
from trackstack.errors import ConfigError, FlavorNotFoundError
from trackstack.local import LocalExperimentTrackerConfig
from trackstack.local.tracker import LocalExperimentTracker
from trackstack.registry import get_flavor


def local_root(tracker: object) -> Path:
    assert isinstance(tracker, LocalExperimentTracker)
    return tracker.config.root


def test_no_config_means_the_local_store_in_the_working_directory(isolated_cwd: Path) -> None:
    tracker = trackstack.load_tracker()
    assert tracker.flavor == "local"
    assert tracker.name == "local"
    assert local_root(tracker) == isolated_cwd / ".trackstack"


def test_yaml_file(isolated_cwd: Path) -> None:
    (isolated_cwd / "tracker.yaml").write_text(
        "experiment_tracker:\n  flavor: local\n  name: mine\n  config:\n    root: runs\n"
    )
    tracker = trackstack.load_tracker("tracker.yaml")
    assert tracker.name == "mine"
    assert local_root(tracker) == isolated_cwd / "runs"


def test_toml_file(isolated_cwd: Path) -> None:
    (isolated_cwd / "tracker.toml").write_text(
        '[experiment_tracker]\nflavor = "local"\n\n[experiment_tracker.config]\nroot = "t"\n'
    )
    assert local_root(trackstack.load_tracker(isolated_cwd / "tracker.toml")) == isolated_cwd / "t"


def test_default_files_in_order(isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated_cwd / "trackstack.toml").write_text(
        '[experiment_tracker]\nflavor = "local"\nconfig = { root = "from-toml" }\n'
    )
    assert local_root(trackstack.load_tracker()).name == "from-toml"
    (isolated_cwd / "trackstack.yaml").write_text("flavor: local\nconfig: {root: from-yaml}\n")
    assert local_root(trackstack.load_tracker()).name == "from-yaml"
    (isolated_cwd / "env.yml").write_text("flavor: local\nconfig: {root: from-env}\n")
    monkeypatch.setenv("TRACKSTACK_CONFIG", str(isolated_cwd / "env.yml"))
    assert local_root(trackstack.load_tracker()).name == "from-env"
    monkeypatch.setenv("TRACKSTACK_CONFIG", str(isolated_cwd / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"\$TRACKSTACK_CONFIG names .*gone\.yaml"):
        trackstack.load_tracker()


@pytest.mark.parametrize(
    "source",
    [
        {"experiment_tracker": {"flavor": "local", "config": {"root": "d"}}},
        {"flavor": "local", "config": {"root": "d"}},
    ],
)
def test_dict_in_either_shape(isolated_cwd: Path, source: dict[str, object]) -> None:
    tracker = trackstack.load_tracker(source)
    assert tracker.name == "local"
    assert local_root(tracker) == isolated_cwd / "d"


def test_environment_interpolation(isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNS_DIR", "from-env")
    monkeypatch.delenv("UNSET_DIR", raising=False)
    monkeypatch.setenv("EMPTY_DIR", "")
    cases = {
        "${RUNS_DIR}/x": "from-env/x",
        "${UNSET_DIR:-fallback}": "fallback",
        "${EMPTY_DIR:-fallback}": "fallback",
        "${RUNS_DIR:-unused}": "from-env",
        "cost$$5": "cost$5",
        "$${RUNS_DIR}": "${RUNS_DIR}",
    }
    for written, resolved in cases.items():
        tracker = trackstack.load_tracker({"flavor": "local", "config": {"root": written}})
        assert local_root(tracker) == isolated_cwd / resolved, written


def test_unset_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKSTACK_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match=r"config\.root: environment variable TRACKSTACK_NOT_SET"):
        trackstack.load_tracker({"flavor": "local", "config": {"root": "${TRACKSTACK_NOT_SET}"}})
    with pytest.raises(ConfigError, match=r"'\$\{1BAD\}' is not a valid reference"):
        trackstack.load_tracker({"flavor": "local", "config": {"root": "${1BAD}"}})


def test_unknown_flavor_lists_the_installed_ones() -> None:
    with pytest.raises(
        FlavorNotFoundError,
        match=r"unknown flavor 'mlflw' \(did you mean 'mlflow'\?\); installed flavors: .*local",
    ):
        trackstack.load_tracker({"flavor": "mlflw"})


def test_unknown_field_names_flavor_field_and_valid_fields() -> None:
    with pytest.raises(ConfigError) as caught:
        trackstack.load_tracker({"flavor": "local", "config": {"roots": "x"}})
    message = str(caught.value)
    assert "flavor 'local'" in message
    assert "unknown field 'roots'" in message
    assert "Valid fields: root, warn_about_plain_text_secrets" in message


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"field 'warn_about_plain_text_secrets'.*got 'maybe'"):
        trackstack.load_tracker(
            {"flavor": "local", "config": {"warn_about_plain_text_secrets": "maybe"}}
        )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"experiment_tracker": {"flavor": "local"}, "extra": 1}, "unknown top-level key"),
        ({"flavor": "local", "confg": {}}, r"unknown key\(s\) \['confg'\].*flavor, name, config"),
        ({"name": "x"}, "'flavor' is required"),
        ({"flavor": "local", "config": ["root"]}, "'config' must be a mapping"),
        ({"experiment_tracker": "local"}, "must be a mapping"),
    ],
)
def test_malformed_configs(source: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        trackstack.load_tracker(source)


def test_file_errors_name_the_file(isolated_cwd: Path) -> None:
    with pytest.raises(ConfigError, match=r"'missing\.yaml' does not exist"):
        trackstack.load_tracker("missing.yaml")
    (isolated_cwd / "bad.yaml").write_text("experiment_tracker: [unclosed\n")
    with pytest.raises(ConfigError, match=r"'bad\.yaml' is not valid"):
        trackstack.load_tracker("bad.yaml")
    (isolated_cwd / "bad.toml").write_text("[experiment_tracker\n")
    with pytest.raises(ConfigError, match=r"'bad\.toml' is not valid"):
        trackstack.load_tracker("bad.toml")
    (isolated_cwd / "typo.yaml").write_text("flavor: local\nconfig: {rot: x}\n")
    with pytest.raises(ConfigError, match=r"^typo\.yaml: invalid config .* unknown field 'rot'"):
        trackstack.load_tracker("typo.yaml")
    with pytest.raises(ConfigError, match="takes a file path or a dict"):
        trackstack.load_tracker(42)  # type: ignore[arg-type]


def test_a_tracker_from_yaml_equals_one_built_in_code(isolated_cwd: Path) -> None:
    (isolated_cwd / "t.yaml").write_text(
        "experiment_tracker:\n  flavor: local\n  name: team\n  config:\n    root: store\n"
    )
    from_file = trackstack.load_tracker("t.yaml")
    in_code = get_flavor("local").create("team", config={"root": "store"})
    assert from_file.config == in_code.config
    assert (from_file.name, from_file.flavor, type(from_file)) == (
        in_code.name,
        in_code.flavor,
        type(in_code),
    )
    assert in_code.config == LocalExperimentTrackerConfig(root=isolated_cwd / "store")


def test_root_is_fixed_when_the_tracker_is_built(
    isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = trackstack.load_tracker()
    elsewhere = isolated_cwd / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with tracker.start_run() as run:
        pass
    assert (isolated_cwd / ".trackstack" / "trackstack.db").is_file()
    assert not (elsewhere / ".trackstack").exists()
    reread = trackstack.load_tracker({"flavor": "local", "config": {"root": "../.trackstack"}})
    assert reread.get_run(run.id).id == run.id
