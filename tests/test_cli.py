"""The ``trackstack`` console script, run as a user runs it: a subprocess, real stores."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import trackstack
from trackstack import RunStatus

SCRIPT = Path(sys.executable).with_name("trackstack")


def cli(*arguments: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *map(str, arguments)], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def local_config(folder: Path, name: str = "store") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"experiment_tracker:\n  flavor: local\n  config:\n    root: {folder / name}\n")
    return path


def two_runs(config: Path) -> list[str]:
    tracker = trackstack.load_tracker(config)
    ids = []
    for lr in (0.1, 0.2):
        with tracker.start_run(experiment="cli", run_name=f"lr-{lr}", tags={"t": "x"}) as run:
            run.log_params({"lr": lr, "epochs": 3})
            for step in range(4):
                run.log_metrics({"loss": lr * (4 - step), "acc": step * lr}, step=step)
        ids.append(run.id)
    return ids


# -- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["flavors"],
        ["flavors", "show"],
        ["config"],
        ["config", "validate"],
        ["config", "init"],
        ["runs"],
        ["runs", "list"],
        ["runs", "show"],
        ["runs", "compare"],
        ["sync"],
    ],
    ids=lambda command: " ".join(command) or "trackstack",
)
def test_every_command_explains_itself(command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: trackstack")
    assert len(result.stdout.splitlines()) > 3


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trackstack", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"trackstack, version {trackstack.__version__}"


def test_a_usage_error_exits_2_and_says_how_to_get_help() -> None:
    result = cli("runs", "compare")
    assert result.returncode == 2
    assert "Missing argument 'RUN...'" in result.stderr
    assert "--help" in result.stderr


# -- flavors -------------------------------------------------------------------------------


def test_flavors_lists_each_with_its_origin() -> None:
    table = cli("flavors")
    assert table.returncode == 0, table.stderr
    assert "local" in table.stdout
    assert f"trackstack {trackstack.__version__}" in table.stdout
    listed = {info["name"]: info for info in json.loads(cli("flavors", "--json").stdout)}
    expected = {info.name: info.available for info in trackstack.list_flavors()}
    assert {name: info["available"] for name, info in listed.items()} == expected
    assert listed["local"]["distribution"] == "trackstack"
    for info in listed.values():
        assert info["available"] or info["install_hint"].startswith("pip install")


def test_flavors_show_gives_fields_and_the_json_schema() -> None:
    table = cli("flavors", "show", "local")
    assert table.returncode == 0, table.stderr
    assert "root" in table.stdout
    assert "folder of the store" in table.stdout.lower() or "store" in table.stdout
    schema = json.loads(cli("flavors", "show", "local", "--json").stdout)
    assert set(schema["properties"]) >= {"root", "warn_about_plain_text_secrets"}


def test_an_unknown_flavor_is_one_line_on_stderr_and_exit_1() -> None:
    result = cli("flavors", "show", "nope")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: unknown flavor 'nope'")
    assert "`trackstack flavors` lists what is here" in line


# -- config --------------------------------------------------------------------------------


def test_config_init_writes_a_file_that_validates(isolated_cwd: Path) -> None:
    written = cli("config", "init", "local", cwd=isolated_cwd)
    assert written.returncode == 0, written.stderr
    text = (isolated_cwd / "trackstack.yaml").read_text()
    assert "flavor: local" in text
    assert "# root:" in text
    checked = cli("config", "validate", "trackstack.yaml", cwd=isolated_cwd)
    assert checked.returncode == 0, checked.stderr
    assert "valid" in checked.stdout
    again = cli("config", "init", "local", cwd=isolated_cwd)
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert cli("config", "init", "local", "--force", cwd=isolated_cwd).returncode == 0


def test_config_validate_reports_every_problem_at_once(isolated_cwd: Path) -> None:
    bad = isolated_cwd / "bad.yaml"
    bad.write_text(
        "experiment_tracker:\n  flavor: local\n  config:\n"
        "    root: ${TRACKSTACK_TEST_UNSET_VARIABLE}\n"
        "    warn_about_plain_text_secrets: sometimes\n"
        "    colour: blue\n"
    )
    result = cli("config", "validate", bad)
    assert result.returncode == 1
    assert "TRACKSTACK_TEST_UNSET_VARIABLE" in result.stderr
    assert "warn_about_plain_text_secrets" in result.stderr
    assert "unknown field 'colour'" in result.stderr
    report = json.loads(cli("config", "validate", bad, "--json").stdout)
    assert report["valid"] is False
    assert len(report["errors"]) == 2  # the missing variable; the fields, in one message
    unknown = isolated_cwd / "unknown.yaml"
    unknown.write_text("experiment_tracker:\n  flavor: nope\n")
    result = cli("config", "validate", unknown)
    assert result.returncode == 1
    assert "unknown flavor 'nope'" in result.stderr
    missing = cli("config", "validate", isolated_cwd / "missing.yaml")
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


# -- runs ----------------------------------------------------------------------------------


def test_runs_list_show_and_compare(isolated_cwd: Path) -> None:
    config = local_config(isolated_cwd)
    first, second = two_runs(config)
    listed = cli("runs", "list", "--config", config)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.index(second) < listed.stdout.index(first)  # newest first
    rows = json.loads(cli("runs", "list", "--config", config, "--json").stdout)
    assert [row["id"] for row in rows] == [second, first]
    assert {row["status"] for row in rows} == {"FINISHED"}
    lines = list(
        csv.DictReader(io.StringIO(cli("runs", "list", "--config", config, "--csv").stdout))
    )
    assert [line["id"] for line in lines] == [second, first]

    shown = cli("runs", "show", first, "--config", config)
    assert shown.returncode == 0, shown.stderr
    assert "lr-0.1" in shown.stdout
    assert "FINISHED" in shown.stdout
    record = json.loads(cli("runs", "show", first, "--config", config, "--json").stdout)
    assert record["params"] == {"lr": "0.1", "epochs": "3"}

    compared = cli("runs", "compare", first, second, "--config", config)
    assert compared.returncode == 0, compared.stderr
    assert "* differs between runs" in compared.stdout
    data = json.loads(cli("runs", "compare", first, second, "--config", config, "--json").stdout)
    assert sorted(data["differing"]) == ["acc", "loss", "lr"]
    table = cli("runs", "compare", first, second, "--config", config, "--csv").stdout
    by_name = {row["name"]: row for row in csv.DictReader(io.StringIO(table))}
    assert by_name["lr"][first] == "0.1"
    assert by_name["loss"][second] == "0.2"


def test_runs_from_different_trackers_compare_in_one_table(isolated_cwd: Path) -> None:
    (first, _), (_, second) = (
        two_runs(local_config(isolated_cwd, "a")),
        two_runs(local_config(isolated_cwd, "b")),
    )
    result = cli("runs", "compare", f"a.yaml:{first}", f"b.yaml:{second}", "--json",
                 cwd=isolated_cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"]["lr"] == {first: "0.1", second: "0.2"}


def test_an_unknown_run_is_an_error_naming_it(isolated_cwd: Path) -> None:
    config = local_config(isolated_cwd)
    two_runs(config)
    for command in (["runs", "show", "nope"], ["runs", "compare", "nope"]):
        result = cli(*command, "--config", config)
        assert result.returncode == 1
        assert "no run 'nope'" in result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_compare_plot_draws_one_panel_per_metric(isolated_cwd: Path) -> None:
    config = local_config(isolated_cwd)
    first, second = two_runs(config)
    png = isolated_cwd / "curves.png"
    result = cli("runs", "compare", first, second, "--config", config, "--plot", png)
    if importlib.util.find_spec("matplotlib") is None:
        assert result.returncode == 1
        assert "pip install 'trackstack[plot]'" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
        described = json.loads(image.info["Description"])
    assert described["panels"] == ["acc", "loss"]
    assert width >= 600
    assert height >= 2 * 200  # a panel per metric, stacked


# -- sync ----------------------------------------------------------------------------------


def test_sync_delivers_a_dead_process_journal_once(isolated_cwd: Path) -> None:
    config = local_config(isolated_cwd)
    script = isolated_cwd / "dies.py"
    script.write_text(
        "import os, trackstack\n"
        f"tracker = trackstack.load_tracker({str(config)!r})\n"
        "tracker.flush_interval = 3600\n"
        "run = tracker.start_run(experiment='offline')\n"
        "run.log_metrics({'loss': 1.0}, step=0)\n"
        "run.log_metrics({'loss': 0.5}, step=1)\n"
        "print(run.id, flush=True)\n"
        "os._exit(3)  # no atexit: as a process killed before its sender ran\n"
    )
    died = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=isolated_cwd, timeout=120)  # fmt: skip
    run_id = died.stdout.strip()
    assert list((isolated_cwd / ".trackstack" / "journal").rglob("records"))
    first = cli("sync", "--config", config, "--json", cwd=isolated_cwd)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["runs"], report["points"], report["ended"]) == (1, 2, 1)
    assert [run["run_id"] for run in report["recovered"]] == [run_id]
    second = cli("sync", "--config", config, cwd=isolated_cwd)
    assert second.stdout.strip() == "delivered 0 metric points and 0 run ends of 0 run(s)"
    stored = trackstack.load_tracker(config).get_run(run_id)
    assert [(p.step, p.value) for p in stored.metrics["loss"]] == [(0, 1.0), (1, 0.5)]
    assert stored.status is RunStatus.KILLED
