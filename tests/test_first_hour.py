"""What a newcomer meets first, in the order they meet it: starter configs, the flavor
list, paths, the run tables, mistyped names, the config in effect."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

import trackstack
from tests.conftest import FAKE_ADAPTER_DIR
from tests.test_cli import SCRIPT, cli, local_config, two_runs
from trackstack.compare import compare_runs

CANARY = "canary-first-hour-0b1d"


@pytest.mark.parametrize(
    "flavor", [info.name for info in trackstack.list_flavors() if info.available]
)
def test_every_starter_config_validates(isolated_cwd: Path, flavor: str) -> None:
    written = cli("config", "init", flavor, "-o", f"{flavor}.yaml", cwd=isolated_cwd)
    assert written.returncode == 0, written.stderr
    checked = cli("config", "validate", f"{flavor}.yaml", cwd=isolated_cwd)
    assert checked.returncode == 0, checked.stderr + (isolated_cwd / f"{flavor}.yaml").read_text()
    text = (isolated_cwd / f"{flavor}.yaml").read_text()
    # A secret is read from the backend's own variable, the one its docs name.
    for variable in re.findall(r"\$\{(\w+)\}", text):
        assert variable.startswith(f"{flavor.upper()}_"), variable


def test_starter_configs_name_the_backends_own_variables(isolated_cwd: Path) -> None:
    written = cli("config", "init", "mlflow", cwd=isolated_cwd)
    if not any(info.name == "mlflow" and info.available for info in trackstack.list_flavors()):
        assert written.returncode == 1  # without the extra: the line that installs it
        assert "[mlflow]'" in written.stderr
        return
    text = (isolated_cwd / "trackstack.yaml").read_text()
    for variable in (
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
    ):
        assert f"${{{variable}}}" in text


def test_the_flavor_list_prints_install_lines_as_written(fake_adapter: Path) -> None:
    paths = os.pathsep.join([str(fake_adapter), str(FAKE_ADAPTER_DIR)])
    listed = subprocess.run(
        [str(SCRIPT), "flavors"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": paths},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    hints = [info.install_hint for info in trackstack.list_flavors() if info.install_hint]
    assert "pip install 'fake-trackstack-adapter[needs-sdk]'" in hints
    for hint in hints:
        assert hint in listed.stdout, listed.stdout  # brackets and all


def test_relative_paths_in_a_file_resolve_against_its_folder(isolated_cwd: Path) -> None:
    project, elsewhere = isolated_cwd / "project", isolated_cwd / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    config = project / "trackstack.yaml"
    config.write_text("experiment_tracker:\n  flavor: local\n  config:\n    root: store\n")
    tracker = trackstack.load_tracker(config)
    assert tracker.config.root == project / "store"  # type: ignore[attr-defined]
    (run_id, _) = two_runs(config)
    listed = cli("runs", "list", "--config", config, "--json", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert run_id in {row["id"] for row in json.loads(listed.stdout)}
    assert list(elsewhere.iterdir()) == []
    in_code = trackstack.load_tracker({"flavor": "local", "config": {"root": "store"}})
    assert in_code.config.root == isolated_cwd / "store"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "command", [["runs", "list"], ["runs", "show", "x"], ["runs", "compare", "x"]]
)
def test_a_read_only_command_never_creates_a_store(isolated_cwd: Path, command: list[str]) -> None:
    config = isolated_cwd / "typo.yaml"
    config.write_text("experiment_tracker:\n  flavor: local\n  config:\n    root: stroe\n")
    result = cli(*command, "--config", config, cwd=isolated_cwd)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert f"no local store at {isolated_cwd / 'stroe'}" in line
    assert not (isolated_cwd / "stroe").exists()


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_comparison_table_keeps_its_columns_at_any_width(
    isolated_cwd: Path, width: int
) -> None:
    config = local_config(isolated_cwd)
    tracker = trackstack.load_tracker(config)
    ids = two_runs(config)
    with tracker.start_run(experiment="cli", run_name="a third, with a long name") as run:
        run.log_params({"lr": 0.3})
    records = [tracker.get_run(run_id) for run_id in [*ids, run.id]]
    with open(os.devnull, "w") as sink:
        out = Console(width=width, color_system=None, markup=False, record=True, file=sink)
        out.print(compare_runs(records).table())
    lines = out.export_text().splitlines()
    body = [line for line in lines if line.startswith(("│", "┃"))]
    bars = {tuple(i for i, c in enumerate(line) if c in "│┃") for line in body}
    assert len(bars) == 1, "\n".join(lines)  # every row keeps the same column boundaries
    id_row = next(line for line in lines if "run id" in line)
    assert all(record.id[:4] in id_row for record in records), "\n".join(lines)
    piped = cli("runs", "compare", *ids, run.id, "--config", config)
    assert piped.returncode == 0, piped.stderr
    assert all(record.id in piped.stdout for record in records)


def test_mistyped_names_get_the_closest_one(isolated_cwd: Path) -> None:
    (isolated_cwd / "trackstack.yaml").write_text("experiment_tracker:\n  flavor: locl\n")
    loaded = cli("runs", "list", cwd=isolated_cwd)
    assert loaded.returncode == 1
    assert "trackstack.yaml: unknown flavor 'locl' (did you mean 'local'?)" in loaded.stderr
    assert "pip install" not in loaded.stderr
    (isolated_cwd / "trackstack.yaml").write_text(
        "experiment_tracker:\n  flavor: local\n  config:\n    rooot: x\n"
    )
    field = cli("config", "validate", "trackstack.yaml", cwd=isolated_cwd)
    assert "unknown field 'rooot' (did you mean 'root'?)" in field.stderr
    command = cli("runs", "lsit")
    assert command.returncode == 2
    assert "Did you mean 'list'?" in command.stderr


def test_help_lists_every_command_and_errors_start_alike(isolated_cwd: Path) -> None:
    help_text = cli("--help").stdout
    for command in ("flavors show", "config show", "runs show", "runs compare", "sync"):
        assert f"trackstack {command}" in help_text
    (isolated_cwd / "bad.yaml").write_text("experiment_tracker:\n  flavor: local\n  config: 3\n")
    for result in (
        cli("config", "validate", "bad.yaml", cwd=isolated_cwd),
        cli("flavors", "show", "x"),
    ):
        assert result.stderr.startswith("Error: "), result.stderr


def test_runs_list_filters_sorts_and_shows_metrics(isolated_cwd: Path) -> None:
    config = local_config(isolated_cwd)
    tracker = trackstack.load_tracker(config)
    ids = []
    for index, status in enumerate(["FINISHED", "FAILED", "FINISHED"]):
        run = tracker.start_run(experiment="listed", tags={"team": "b" if index else "a"})
        run.log_metrics({"loss": [0.3, 0.1, 0.2][index]})
        run.end(status)
        ids.append(run.id)
    rows = json.loads(
        cli(
            "runs", "list", "--config", config, "--metric", "loss", "--sort", "loss", "--json"
        ).stdout
    )
    assert [row["id"] for row in rows] == [ids[1], ids[2], ids[0]]
    assert [row["loss"] for row in rows] == [0.1, 0.2, 0.3]
    rows = json.loads(
        cli(
            "runs", "list", "--config", config, "--status", "finished", "--tag", "team=b", "--json"
        ).stdout
    )
    assert [row["id"] for row in rows] == [ids[2]]
    rows = json.loads(cli("runs", "list", "--config", config, "--limit", "2", "--json").stdout)
    assert [row["id"] for row in rows] == [ids[2], ids[1]]
    assert [r.id for r in tracker.list_runs(status="FAILED", tags={"team": "b"})] == [ids[1]]
    missing = cli("runs", "list", "--config", config, "-e", "liste")
    assert missing.returncode == 1
    assert "no experiment 'liste'" in missing.stderr
    assert "did you mean 'listed'?" in missing.stderr


def test_runs_show_gives_times_and_labelled_points(isolated_cwd: Path) -> None:
    config = local_config(isolated_cwd)
    first, _ = two_runs(config)
    shown = cli("runs", "show", first, "--config", config)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"started \S+, ended \S+ \(\d+m \d\ds\)", shown.stdout), shown.stdout
    points = json.loads(cli("runs", "show", first, "--config", config, "--json").stdout)
    assert points["metrics"]["loss"][0] == {
        "step": 0,
        "value": 0.4,
        "timestamp": pytest.approx(points["metrics"]["loss"][0]["timestamp"]),
    }


def test_config_show_names_the_file_and_hides_secrets(
    isolated_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRST_HOUR_ROOT", CANARY)
    (isolated_cwd / "trackstack.yaml").write_text(
        "experiment_tracker:\n  flavor: local\n  config:\n    root: ${FIRST_HOUR_ROOT}\n"
    )
    shown = cli("config", "show", cwd=isolated_cwd)
    assert shown.returncode == 0, shown.stderr
    assert "trackstack.yaml (found here)" in shown.stdout
    assert "${FIRST_HOUR_ROOT}" in shown.stdout
    assert CANARY not in shown.stdout
    as_json = json.loads(cli("config", "show", "--json", cwd=isolated_cwd).stdout)
    assert as_json["flavor"] == "local"
    assert as_json["config"]["warn_about_plain_text_secrets"]["from"] == "default"
    nothing = isolated_cwd / "empty"
    nothing.mkdir()
    default = cli("config", "show", cwd=nothing)
    assert "the default local store" in default.stdout


def test_config_validate_connect_reaches_the_store(isolated_cwd: Path) -> None:
    config = local_config(isolated_cwd)
    before = cli("config", "validate", config, "--connect")
    assert before.returncode == 0, before.stderr
    assert "does not exist yet" in before.stdout
    two_runs(config)
    after = cli("config", "validate", config, "--connect")
    assert re.search(r"reached the local backend and read its runs in \d+ ms", after.stdout)


def test_brackets_in_names_and_values_print_as_written(isolated_cwd: Path) -> None:
    config = local_config(isolated_cwd)
    tracker = trackstack.load_tracker(config)
    name = "[bold]run[/bold] [mlflow]"
    with tracker.start_run(experiment="[exp]", run_name=name, tags={"k": "[red]v"}) as run:
        run.log_params({"p": "[x]"})
    for command in (["runs", "list"], ["runs", "show", run.id], ["runs", "compare", run.id]):
        result = cli(*command, "--config", config)
        assert result.returncode == 0, result.stderr
        assert name in result.stdout, result.stdout
    shown = cli("runs", "show", run.id, "--config", config).stdout
    assert "[red]v" in shown
    assert "[x]" in shown
