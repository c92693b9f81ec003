"""The ``trackstack`` command: flavors, configs, runs side by side, metric plots, sync.

Built on click, like ``mlflow`` and ``wandb``. Every command answers ``--help``;
``--json`` prints machine-readable output. Exit codes: 0 success, 1 failure
(one line on stderr saying what failed and the fix), 2 usage error.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
import re
import shutil
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
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


FANOUT_STARTER = """\
# trackstack config logging every run to several trackers at once; check it with
#   trackstack config validate {output}
# Each entry is an experiment_tracker section (flavor, name, config); reads go to the
# first that has the run. `trackstack config init FLAVOR` shows a flavor's fields.
experiment_trackers:
  - flavor: local
    name: laptop
  - flavor: local
    name: backup
    config:
      root: .trackstack-backup
"""

_config_option = click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)


def _console() -> Console:
    # No markup: names, params and hints hold brackets ("trackstack[mlflow]") to print as is.
    console = Console(highlight=False, markup=False)
    # Piped output has no width to fit: keep table rows whole rather than 80 columns.
    return console if console.is_terminal else Console(highlight=False, markup=False, width=200)


class _Group(click.Group):
    """A command group that answers a mistyped command with the closest one."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(self.list_commands(ctx))
            ctx.fail(f"No such command {name!r}.{hint} Commands: {known}.")
        return super().resolve_command(ctx, args)


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


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
@click.version_option(package_name="trackstack", prog_name="trackstack")
def main() -> None:
    """One experiment-tracking API in front of MLflow, Weights & Biases and a local store.

    \b
    trackstack flavors                     backends you can use, and how to install them
    trackstack flavors show mlflow         a flavor's config fields, defaults and secrets
    trackstack config init mlflow          write a starter trackstack.yaml
    trackstack config validate FILE        report every problem of a config file
    trackstack config show                 the config in effect: which file, what it sets
    trackstack runs list                   runs of the configured tracker, newest first
    trackstack runs show RUN_ID            one run: times, params, tags, metrics, artifacts
    trackstack runs compare ID ID          params and final metrics side by side
    trackstack runs verify RUN_ID          a fan-out run: do its trackers hold the same?
    trackstack sync                        deliver what waits in run journals

    Runs commands read the config that `trackstack config show` names, or --config FILE.
    """


# -- flavors ---------------------------------------------------------------------------


@main.group(cls=_Group, invoke_without_command=True)
@_json_option
@click.pass_context
def flavors(context: click.Context, as_json: bool) -> None:
    """Installed flavors, where from, and how to install a missing one."""
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
    """The config fields of flavor NAME.

    --json prints the config's JSON schema.
    """
    from trackstack.registry import get_flavor
    from trackstack.secrets import secret_field_names

    with _failures():
        model = get_flavor(name).config_class
    if as_json:
        _echo_json(model.model_json_schema())
        return
    secrets = secret_field_names(model)
    # A field a paragraph: a table of five columns is unreadable at 80 columns.
    width = min(shutil.get_terminal_size().columns, 100) - 6
    lines = [f"config fields of flavor {name} (`trackstack config init {name}` writes them):"]
    for field, info in model.model_fields.items():
        secret = ", a secret: read it through ${VAR}" if field in secrets else ""
        lines.append("")
        lines.append(f"  {field}: {_type_name(info.annotation)}{secret}")
        lines.append(f"      default: {_default_text(info)}")
        lines += textwrap.wrap(
            _plain(info.description or ""), width, initial_indent="      ",
            subsequent_indent="      ",
        )  # fmt: skip
    click.echo("\n".join(lines))


def _plain(text: str) -> str:
    """A docstring's text for a terminal: RST's ``literal`` quoting as `literal`, one line."""
    return " ".join(text.replace("``", "`").split())


def _default_text(info: Any) -> str:
    """A field's default as it would be written in the config file (YAML): a computed
    one (from the environment or the working directory) as it comes out here."""
    value = info.get_default(call_default_factory=True)
    if isinstance(value, Path | str):
        return str(value)
    return json.dumps(value, default=str)  # None as null, True as true, {} as {}


# -- config ----------------------------------------------------------------------------


@main.group(cls=_Group)
def config() -> None:
    """Check a config file, or write a starter one."""


@config.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--connect",
    is_flag=True,
    help="Also reach the backend: report its answer, credentials and time.",
)
@_json_option
def config_validate(file: Path, connect: bool, as_json: bool) -> None:
    """Report every problem of config FILE at once.

    FILE is loaded as load_tracker would load it; --connect also reaches the backend.
    """
    from trackstack.config import check_config

    errors, warnings = check_config(file)
    reached = _reach(file) if connect and not errors else None
    if reached is not None and not reached["ok"]:
        errors.append(reached["said"])
    if as_json:
        _echo_json(
            {"file": str(file), "valid": not errors, "errors": errors, "warnings": warnings}
            | ({"connect": reached} if reached is not None else {})
        )
    else:
        for warning in warnings:
            click.echo(f"Warning: {warning}", err=True)
        for error in errors:
            click.echo(f"Error: {error}", err=True)
        if not errors:
            click.echo(f"{file}: valid")
        if reached is not None and reached["ok"]:
            click.echo(reached["said"])
    if errors:
        sys.exit(1)


def _reach(file: Path) -> dict[str, Any]:
    """Whether the tracker FILE describes reaches its backend: what it said, how fast."""
    from trackstack.errors import AuthenticationError

    try:
        tracker = _tracker(str(file))
        missing = tracker.missing_store()
        if missing is not None:
            said = f"the {tracker.flavor} store at {missing} does not exist yet: a run creates it"
            return {"ok": True, "said": said, "seconds": None}
        started = time.perf_counter()
        tracker.list_runs(limit=1)
        seconds = time.perf_counter() - started
    except AuthenticationError as exc:
        return {"ok": False, "said": f"the backend refused the credentials: {exc}", "seconds": None}
    except TrackstackError as exc:
        return {"ok": False, "said": f"cannot use the backend: {exc}", "seconds": None}
    said = f"reached the {tracker.flavor} backend and read its runs in {seconds * 1000:.0f} ms"
    return {"ok": True, "said": said, "seconds": seconds}


@config.command("show")
@_config_option
@_json_option
def config_show(config_file: str | None, as_json: bool) -> None:
    """The config in effect: its file, flavor and fields.

    Secrets are masked, and a value read through ${VAR} is shown as that reference.
    """
    from trackstack.config import describe_config

    with _failures():
        shown = describe_config(config_file)
    if as_json:
        _echo_json(shown)
        return
    console = _console()
    console.print(f"config: {shown['source']}")
    console.print(f"flavor: {shown['flavor']}   name: {shown['name']}   log_on: {shown['log_on']}")
    for index, member in enumerate(shown.get("members", [shown]), 1):
        if "members" in shown:
            console.print(f"member {index}: flavor {member['flavor']}, name {member['name']}")
        console.print(f"run journals: {member['journal']}")
        table = Table("field", "value", "from")
        for field, entry in member["config"].items():
            table.add_row(field, entry["value"], entry["from"])
        console.print(table)


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
    from trackstack.secrets import secret_field_names, secret_variable

    with _failures():
        model = get_flavor(flavor).config_class
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; pass --force to overwrite it")
    if flavor == "fanout":
        output.write_text(FANOUT_STARTER.format(output=output))
        click.echo(f"wrote {output}")
        return
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
        described = textwrap.wrap(_plain(info.description or ""), 88)
        lines += [f"    # {line}" for line in described]
        if field in secrets:
            variable = secret_variable(model, field, prefix=f"{flavor}_")
            lines.append(
                f"    # {field}: ${{{variable}}}   # a secret: read it from the environment"
            )
        else:
            lines.append(f"    # {field}: {_default_text(info)}")
    output.write_text("\n".join(lines) + "\n")
    click.echo(f"wrote {output}")


# -- runs ------------------------------------------------------------------------------


def _format_option(command: _F) -> _F:
    command = click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")(command)
    return _json_option(command)


@main.group(cls=_Group)
def runs() -> None:
    """Read runs back and compare them, whatever the backend."""


def _reading_tracker(config: str | None) -> Any:
    """The configured tracker, for a command that only reads: never one whose store it would
    create (a wrong --config or path would otherwise show an empty, new store)."""
    tracker = _tracker(config)
    missing = tracker.missing_store()
    if missing is not None:
        where = f"--config {config}" if config else "the config `trackstack config show` names"
        raise TrackstackError(
            f"there is no {tracker.flavor} store at {missing}: nothing has been logged there. "
            f"Check {where} (relative paths in a file resolve against the file's folder)"
        )
    return tracker


def _tag_filter(pairs: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    return tags


@runs.command("list")
@_config_option
@click.option("--experiment", "-e", help="Only the runs of this experiment (W&B: project).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["RUNNING", "FINISHED", "FAILED", "KILLED"], case_sensitive=False),
    help="Only runs with this status (repeat for several).",
)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only runs with this tag.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many runs.")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME",
    help="Add a column with this metric's final value (repeat for several).",
)
@click.option("--sort", metavar="METRIC", help="Order by this metric's final value, lowest first.")
@click.option("--reverse", is_flag=True, help="Reverse the order (with --sort: highest first).")
@_format_option
def runs_list(
    config_file: str | None,
    experiment: str | None,
    statuses: tuple[str, ...],
    tags: tuple[str, ...],
    limit: int | None,
    metrics: tuple[str, ...],
    sort: str | None,
    reverse: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """List runs of the configured tracker, newest first."""
    wanted = _tag_filter(tags)
    with _failures():
        tracker = _reading_tracker(config_file)
        records = tracker.list_runs(
            experiment, status=statuses or None, tags=wanted, limit=None if sort else limit
        )
        if not records and experiment is not None:
            _require_experiment(tracker, experiment)
    if sort:
        present = [r for r in records if sort in r.final_metrics()]
        present.sort(key=lambda r: r.final_metrics()[sort], reverse=reverse)
        records = present + [r for r in records if sort not in r.final_metrics()]
        records = records[:limit] if limit else records
    elif reverse:
        records.reverse()
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "experiment": r.experiment,
            "status": r.status.value,
            "start_time": r.start_time.isoformat() if r.start_time else None,
            "metrics": len(r.metrics),
            "params": len(r.params),
            **{name: r.final_metrics().get(name) for name in metrics},
        }
        for r in records
    ]
    columns = ["id", "name", "experiment", "status", "start_time", "metrics", "params", *metrics]
    if as_json:
        _echo_json(rows)
    elif as_csv:
        _echo_csv(columns, rows)
    else:
        table = Table(*columns)
        for row in rows:
            table.add_row(*(str(row[k]) if row[k] is not None else "" for k in columns))
        _console().print(table)


def _require_experiment(tracker: Any, experiment: str) -> None:
    """Raise, naming the experiments there are, when ``experiment`` is not one of them."""
    known = sorted({record.experiment for record in tracker.list_runs()})
    if experiment in known:
        return
    close = difflib.get_close_matches(experiment, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise TrackstackError(
        f"no experiment {experiment!r} in this {tracker.flavor} store; {hint}"
        f"experiments: {', '.join(known) or 'none yet'}"
    )


@runs.command("show")
@click.argument("run_id")
@_config_option
@_json_option
def runs_show(run_id: str, config_file: str | None, as_json: bool) -> None:
    """One run: status, times, params, tags, metrics, artifacts."""
    with _failures():
        record = _reading_tracker(config_file).get_run(run_id)
    if as_json:
        _echo_json(record.to_dict())
        return
    console = _console()
    console.print(f"run {record.id} ({record.name or 'unnamed'}) in {record.experiment}: "
                  f"{record.status.value}")  # fmt: skip
    if record.parent_id:
        console.print(f"parent: {record.parent_id}")
    if record.start_time:
        ended = record.end_time.isoformat(timespec="seconds") if record.end_time else "running"
        until = record.end_time or datetime.now(UTC)
        took = until - record.start_time
        console.print(
            f"started {record.start_time.isoformat(timespec='seconds')}, ended {ended} "
            f"({'for ' if record.end_time is None else ''}{_duration(took.total_seconds())})"
        )
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


def _duration(seconds: float) -> str:
    minutes, rest = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {rest:02d}s" if hours else f"{minutes}m {rest:02d}s"


def _resolve_runs(references: Sequence[str], default_config: str | None) -> list[Any]:
    """Each ``RUN_ID`` or ``CONFIG_FILE:RUN_ID`` read back from its tracker, a tracker's
    runs in one read (their histories only when used)."""
    wanted: dict[str | None, list[str]] = {}
    for reference in references:
        config_file, _, run_id = reference.rpartition(":")
        wanted.setdefault(config_file or default_config, []).append(run_id)
    found: dict[tuple[str | None, str], Any] = {}
    with _progress() as progress:
        task = progress.add_task("reading runs", total=len(wanted))
        for config, run_ids in wanted.items():
            records = _reading_tracker(config).get_runs(run_ids)
            found.update(((config, r), record) for r, record in zip(run_ids, records, strict=True))
            progress.advance(task)
    ordered = []
    for reference in references:
        config_file, _, run_id = reference.rpartition(":")
        ordered.append(found[(config_file or default_config, run_id)])
    return ordered


@runs.command("verify")
@click.argument("run_id")
@_config_option
@_json_option
def runs_verify(run_id: str, config_file: str | None, as_json: bool) -> None:
    """Compare what each tracker of a fan-out config holds for RUN_ID.

    Params, tags, every metric point, artifacts and status; exits 0 only if they agree.
    """
    with _failures():
        tracker = _reading_tracker(config_file)
        verify = getattr(tracker, "verify", None)
        if verify is None:
            raise TrackstackError(
                f"the {tracker.flavor} tracker is one tracker: verify compares the members of an "
                "experiment_trackers: config (a fan-out)"
            )
        found = verify(run_id)
    if as_json:
        _echo_json({"run_id": run_id, "members": found.members, "agree": found.agree,
                    "differences": found.differences})  # fmt: skip
    elif found.agree:
        click.echo(f"run {run_id}: {', '.join(found.members)} agree")
    else:
        click.echo(f"run {run_id}: the members differ")
        for difference in found.differences:
            click.echo(f"  {difference}")
    if not found.agree:
        sys.exit(1)


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
    """Params and final metrics of runs side by side.

    Differences are marked.

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
        _console().print(comparison.table())
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
    """Deliver run journals; runs of dead processes end KILLED.

    Safe to run again, and beside a running program: what was delivered is not
    sent twice, and journals still being written are left alone.
    """
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
