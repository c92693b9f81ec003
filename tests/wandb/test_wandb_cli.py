"""The ``trackstack`` command against W&B offline run files, and next to a local store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import cli, local_config, two_runs


def test_runs_commands_read_wandb_offline_runs_and_compare_them(isolated_cwd: Path) -> None:
    config = isolated_cwd / "wandb.yaml"
    config.write_text(
        "experiment_tracker:\n  flavor: wandb\n  config:\n"
        f"    mode: offline\n    dir: {isolated_cwd / 'runs'}\n"
    )
    first, second = two_runs(config)
    rows = json.loads(cli("runs", "list", "--config", config, "--json").stdout)
    assert [row["id"] for row in rows] == [second, first]
    shown = json.loads(cli("runs", "show", first, "--config", config, "--json").stdout)
    assert shown["params"] == {"lr": "0.1", "epochs": "3"}
    assert shown["status"] == "FINISHED"
    local_first, _ = two_runs(local_config(isolated_cwd))
    result = cli("runs", "compare", f"wandb.yaml:{second}", f"store.yaml:{local_first}",
                 "--json", cwd=isolated_cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr
    compared = json.loads(result.stdout)
    assert compared["params"]["lr"] == {second: "0.2", local_first: "0.1"}
    assert compared["metrics"]["acc"] == {
        second: 0.6000000000000001,
        local_first: 0.30000000000000004,
    }
