"""The ``trackstack`` command: flavors, configs, runs side by side, metric plots, sync.

Built on click, like ``mlflow`` and ``wandb``. Every command answers ``--help``;
``--json`` prints machine-readable output. Exit codes: 0 success, 1 failure
(one line on stderr saying what failed and the fix), 2 usage error.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from trackstack.errors import TrackstackError

__all__ = ["main"]

_F = TypeVar("_F", bound=Callable[..., Any])

CONFIG_HELP = (
    "Tracker config file (YAML or TOML). Default: $TRACKSTACK_CONFIG, ./trackstack.yaml, "
    "./trackstack.toml, else the local store in ./.trackstack."
)


_config_option = click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)


def _console() -> Console:
    console = Console(highlight=False)
    # Piped output has no width to fit: keep table rows whole rather than 80 columns.
    return console if console.is_terminal else Console(highlight=False, width=160)


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", text)


def _progress() -> Progress:
    """A progress display on a terminal (on stderr), silent when output is not a terminal."""
    console = Console(stderr=True)
    return Progress(console=console, transient=True, disable=not console.is_terminal)


def _json_option(command: _F) -> _F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        command
    )


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@contextmanager
def _failures() -> Iterator[None]:
    """trackstack's errors as one line on stderr and exit code 1."""
    try:
        yield
    except TrackstackError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from exc


def _tracker(config: str | None) -> Any:
    from trackstack.config import load_tracker

    return load_tracker(config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trackstack", prog_name="trackstack")
def main() -> None:
    """One experiment-tracking API in front of MLflow, Weights & Biases and a local store.

    \b
    trackstack flavors                     backends you can use, and how to install them
    trackstack config init mlflow          write a starter trackstack.yaml
    trackstack config validate FILE        report every problem of a config file
    trackstack runs list                   runs of the configured tracker, newest first
    trackstack runs compare ID ID          params and final metrics side by side
    trackstack sync                        deliver what waits in run journals
    """


# -- flavors ---------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@_json_option
@click.pass_context
def flavors(context: click.Context, as_json: bool) -> None:
    """List every installed flavor: where it comes from and whether it can be used."""
    if context.invoked_subcommand is not None:
        return
    from trackstack.registry import list_flavors

    infos = list_flavors()
    if as_json:
        _echo_json([dataclasses.asdict(info) for info in infos])
        return
    table = Table("flavor", "from", "available", "to install")
    for info in infos:
        origin = f"{info.distribution} {info.version}" if info.distribution else "?"
        fix = "" if info.available else f"{info.install_hint or ''} ({info.error})"
        table.add_row(info.name, origin, "yes" if info.available else "no", fix)
    _console().print(table)


@flavors.command("show")
@click.argument("name")
@_json_option
def flavors_show(name: str, as_json: bool) -> None:
    """Show the config fields of flavor NAME; --json prints its JSON schema."""
    from trackstack.registry import get_flavor
    from trackstack.secrets import secret_field_names

    with _failures():
        model = get_flavor(name).config_class
    if as_json:
        _echo_json(model.model_json_schema())
        return
    secrets = secret_field_names(model)
    table = Table("field", "type", "default", "secret", "meaning", title=f"flavor {name}")
    for field, info in model.model_fields.items():
        default = "(computed)" if info.default_factory else repr(info.default)
        table.add_row(
            field,
            _type_name(info.annotation),
            default,
            "yes" if field in secrets else "",
            info.description or "",
        )
    _console().print(table)


# -- config ----------------------------------------------------------------------------


@main.group()
def config() -> None:
    """Check a config file, or write a starter one."""


@config.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_json_option
def config_validate(file: Path, as_json: bool) -> None:
    """Load FILE as load_tracker would and report every problem at once."""
    from trackstack.config import check_config

    errors, warnings = check_config(file)
    if as_json:
        _echo_json({"file": str(file), "valid": not errors, "errors": errors, "warnings": warnings})
    else:
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        for error in errors:
            click.echo(f"error: {error}", err=True)
        if not errors:
            click.echo(f"{file}: valid")
    if errors:
        sys.exit(1)


@config.command("init")
@click.argument("flavor")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("trackstack.yaml"),
    show_default=True,
    help="File to write.",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
def config_init(flavor: str, output: Path, force: bool) -> None:
    """Write a commented starter config file for FLAVOR."""
    from trackstack.registry import get_flavor
    from trackstack.secrets import secret_field_names

    with _failures():
        model = get_flavor(flavor).config_class
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; pass --force to overwrite it")
    secrets = secret_field_names(model)
    lines = [
        f"# trackstack config for the {flavor} flavor; check it with",
        f"#   trackstack config validate {output}",
        "experiment_tracker:",
        f"  flavor: {flavor}",
        f"  name: {flavor}",
        "  config:",
    ]
    for field, info in model.model_fields.items():
        if info.description:
            lines.append(f"    # {info.description}")
        if field in secrets:
            lines.append(
                f"    # {field}: ${{{field.upper()}}}   # a secret: read it from the environment"
            )
        elif info.default_factory is None and info.default is not None:
            lines.append(f"    # {field}: {json.dumps(info.default, default=str)}")
        else:
            lines.append(f"    # {field}:")
    output.write_text("\n".join(lines) + "\n")
    click.echo(f"wrote {output}")


# -- runs ------------------------------------------------------------------------------


def _format_option(command: _F) -> _F:
    command = click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")(command)
    return _json_option(command)


@main.group()
def runs() -> None:
    """Read runs back and compare them, whatever the backend."""


@runs.command("list")
@_config_option
@click.option("--experiment", "-e", help="Only the runs of this experiment (W&B: project).")
@_format_option
def runs_list(config_file: str | None, experiment: str | None, as_json: bool, as_csv: bool) -> None:
    """List runs of the configured tracker, newest first."""
    with _failures():
        records = _tracker(config_file).list_runs(experiment)
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "experiment": r.experiment,
            "status": r.status.value,
            "start_time": r.start_time.isoformat() if r.start_time else None,
            "metrics": len(r.metrics),
            "params": len(r.params),
        }
        for r in records
    ]
    if as_json:
        _echo_json(rows)
    elif as_csv:
        _echo_csv(["id", "name", "experiment", "status", "start_time", "metrics", "params"], rows)
    else:
        table = Table("id", "name", "experiment", "status", "started", "metrics", "params")
        for row in rows:
            table.add_row(*(str(row[k]) if row[k] is not None else "" for k in row))
        _console().print(table)


@runs.command("show")
@click.argument("run_id")
@_config_option
@_json_option
def runs_show(run_id: str, config_file: str | None, as_json: bool) -> None:
    """Show one run: status, params, tags, final metrics, artifacts."""
    with _failures():
        record = _tracker(config_file).get_run(run_id)
    if as_json:
        _echo_json(record.to_dict())
        return
    console = _console()
    console.print(f"run {record.id} ({record.name or 'unnamed'}) in {record.experiment}: "
                  f"{record.status.value}")  # fmt: skip
    if record.url:
        console.print(f"url: {record.url}")
    for title, values in (
        ("params", record.params),
        ("tags", record.tags),
        ("final metrics", record.final_metrics()),
    ):
        if not values:
            continue
        table = Table("name", "value", title=title)
        for key, value in sorted(values.items()):
            table.add_row(key, str(value))
        console.print(table)
    if record.artifacts:
        console.print("artifacts: " + ", ".join(record.artifacts))


def _resolve_runs(references: Sequence[str], default_config: str | None) -> list[Any]:
    """Each ``RUN_ID`` or ``CONFIG_FILE:RUN_ID`` read back from its tracker."""
    trackers: dict[str | None, Any] = {}
    records = []
    with _progress() as progress:
        task = progress.add_task("reading runs", total=len(references))
        for reference in references:
            config_file, _, run_id = reference.rpartition(":")
            key = config_file or default_config
            if key not in trackers:
                trackers[key] = _tracker(key)
            records.append(trackers[key].get_run(run_id))
            progress.advance(task)
    return records


@runs.command("compare")
@click.argument("references", nargs=-1, required=True, metavar="RUN...")
@_config_option
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the metric curves into this PNG, one panel per metric (needs matplotlib).",
)
@_format_option
def runs_compare(
    references: tuple[str, ...],
    config_file: str | None,
    plot: Path | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Compare runs: params and final metrics side by side, differences marked.

    A RUN is a run id, or CONFIG_FILE:RUN_ID to read it from another tracker,
    so that runs of MLflow and W&B compare in one table.
    """
    from trackstack.compare import compare_runs

    with _failures():
        records = _resolve_runs(references, config_file)
        comparison = compare_runs(records)
        if plot is not None:
            from trackstack.plot import plot_metrics

            plot_metrics(records, plot)
    if as_json:
        _echo_json(comparison.to_dict())
    elif as_csv:
        ids = [record.id for record in records]
        rows = [
            {"kind": kind, "name": name, **{i: values.get(i) for i in ids}}
            for kind, table in (("param", comparison.params), ("metric", comparison.metrics))
            for name, values in table.items()
        ]
        _echo_csv(["kind", "name", *ids], rows)
    else:
        _console().print(str(comparison))
    if plot is not None and not as_json and not as_csv:
        click.echo(f"plot written to {plot}")


def _echo_csv(columns: list[str], rows: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    click.echo(out.getvalue(), nl=False)


# -- sync ------------------------------------------------------------------------------


@main.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deliver only this tracker's journals. Default: every tracker's under the root.",
)
@click.option(
    "--journal",
    type=click.Path(file_okay=False, path_type=Path),
    help="Journal root. Default: $TRACKSTACK_JOURNAL, else ./.trackstack/journal.",
)
@click.option("--outbox", type=click.Path(file_okay=False, path_type=Path), hidden=True)
@_json_option
def sync(
    config_file: Path | None, journal: Path | None, outbox: Path | None, as_json: bool
) -> None:
    """Deliver what waits in run journals; runs of dead processes end KILLED. Again: nothing."""
    from trackstack.delivery.sync import describe
    from trackstack.syncing import sync as deliver

    with _failures(), _progress() as progress:
        progress.add_task("delivering journals", total=None)
        tracker = _tracker(str(config_file)) if config_file is not None else None
        report = deliver(tracker, journal or outbox)
    if as_json:
        _echo_json(dataclasses.asdict(report))
        return
    click.echo(describe(report))
    for pending, created in report.started.items():
        click.echo(f"  {pending} -> {created}")
    for run in report.recovered:
        click.echo(f"  recovered {run['run_id']} (ended KILLED)")
    for refused in report.refused:
        click.echo(f"  refused {refused['what']} {refused['keys']}: {refused['reason']}")
    for damaged in report.damaged:
        click.echo(f"  damaged {damaged['file']}: {damaged['why']}")
    for failed in report.failed:
        click.echo(f"  failed {failed['journal']}: {failed['error']}")
