"""The ``trackstack`` command against an MLflow store, and next to a local one."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.mlflow.conftest import Servers
from tests.servers import free_port
from tests.test_cli import cli, local_config, two_runs


def mlflow_config(folder: Path, uri: str) -> Path:
    path = folder / "mlflow.yaml"
    path.write_text(f"experiment_tracker:\n  flavor: mlflow\n  config:\n    tracking_uri: {uri}\n")
    return path


def test_runs_commands_read_mlflow_and_compare_it_with_another_tracker(
    isolated_cwd: Path, sqlite_uri: str
) -> None:
    config = mlflow_config(isolated_cwd, sqlite_uri)
    first, second = two_runs(config)
    rows = json.loads(
        cli("runs", "list", "--config", config, "--experiment", "cli", "--json").stdout
    )
    assert [row["id"] for row in rows] == [second, first]
    shown = json.loads(cli("runs", "show", first, "--config", config, "--json").stdout)
    assert shown["tags"] == {"t": "x"}
    local_first, _ = two_runs(local_config(isolated_cwd))
    result = cli("runs", "compare", f"mlflow.yaml:{second}", f"store.yaml:{local_first}",
                 "--json", cwd=isolated_cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["loss"] == {second: 0.2, local_first: 0.1}


def test_validate_warns_about_a_plain_text_secret_without_showing_it(isolated_cwd: Path) -> None:
    path = isolated_cwd / "secret.yaml"
    path.write_text(
        "experiment_tracker:\n  flavor: mlflow\n  config:\n"
        "    tracking_uri: http://127.0.0.1:5000\n"
        "    tracking_token: tok-PLAIN-TEXT-123\n"
        "    warn_about_plain_text_secrets: true\n"
    )
    result = cli("config", "validate", path)
    assert result.returncode == 0, result.stderr
    assert "Warning:" in result.stderr
    assert "${MLFLOW_TRACKING_TOKEN}" in result.stderr
    assert "tracking_token" in result.stderr
    assert "tok-PLAIN-TEXT-123" not in result.stderr + result.stdout


def test_an_unreachable_server_is_one_line_saying_so(isolated_cwd: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    path = isolated_cwd / "down.yaml"
    path.write_text(
        "experiment_tracker:\n  flavor: mlflow\n  config:\n"
        f"    tracking_uri: {url}\n    request_retries: 0\n"
    )
    checked = cli("config", "validate", path, "--connect")
    assert checked.returncode == 1
    (line,) = checked.stderr.splitlines()
    assert f"cannot reach the MLflow server at {url} (connection refused)" in line
    assert "is it running" in line
    assert "Max retries exceeded" not in line


def test_validate_connect_reaches_a_server_and_says_how_fast(
    isolated_cwd: Path, mlflow_servers: Servers
) -> None:
    checked = cli("config", "validate", mlflow_config(isolated_cwd, mlflow_servers.sqlite.url),
                  "--connect")  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert re.search(r"reached the mlflow backend and read its runs in \d+ ms", checked.stdout)
