"""Run every benchmark, print a table per benchmark and write benchmarks/results.json."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import (
    import_cost,
    lightning_loggers,
    memory,
    mlflow_throughput,
    read_scale,
    reliability,
    wandb_offline,
)

RESULTS = Path(__file__).with_name("results.json")


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def main() -> None:
    # Run journals go with the benchmarks' other temporary files, not into the checkout.
    os.environ.setdefault("TRACKSTACK_JOURNAL", tempfile.mkdtemp(prefix="trackstack-journal-"))
    console = Console(width=120)
    imports = import_cost.run()
    table = Table(title="Import cost (fresh process each, median)")
    for column in ("import", "median ms", "times trackstack", "SDKs it loaded"):
        table.add_column(
            column, justify="left" if column in ("import", "SDKs it loaded") else "right"
        )
    for name, seconds in imports["median_seconds"].items():
        table.add_row(
            name,
            f"{seconds * 1000:.1f}",
            f"{imports['times_trackstack'][name]:.1f}",
            imports["sdks_loaded"][name],
        )
    console.print(table)
    if imports["missing"]:
        console.print(f"not installed, not measured: {', '.join(imports['missing'])}")

    throughput = mlflow_throughput.run(
        rounds=int(os.environ.get("BENCH_ROUNDS", "5")),
        scale=float(os.environ.get("BENCH_SCALE", "1")),
    )
    for store, figures in throughput.items():
        table = Table(
            title=f"MLflow metric throughput, {store} store (medians of rounds; ratios per round)"
        )
        for column in ("way", "steps x 4 metrics", "points/s", "a is faster by", "rounds"):
            table.add_column(column, justify="left" if column == "way" else "right")
        for way, name in mlflow_throughput.NAMES.items():
            ratio = figures["a_over"].get(way)
            low, high = figures["a_over_range"].get(way, (None, None))
            table.add_row(
                f"{way}. {name}",
                f"{figures['steps'][way]:,}",
                f"{figures['points_per_second'][way]:,.0f}",
                "" if ratio is None else f"{ratio:.2f}x",
                "" if low is None else f"{low:.2f}-{high:.2f}x",
            )
        console.print(table)
        console.print(
            "trackstack's sender process ready after "
            f"{figures['sender_process_ready_seconds']:.1f} s (once per process: it imports MLflow)"
        )
        for label, key in (
            ("sender process", "blocked_ms"),
            ("sender thread, as before", "blocked_ms_sender_thread"),
        ):
            blocked = figures[key]
            console.print(
                f"training loop blocked per log_metrics call ({label}): "
                f"median {blocked['median']:.3f} ms, p99 {blocked['p99']:.3f} ms, "
                f"max {blocked['max']:.2f} ms ({blocked['max_less_cpu_wait']:.2f} ms "
                f"less waiting for a CPU), {blocked['calls_over_5_ms']} calls over 5 ms; "
                f"{blocked['calls_with_full_gc']} calls held by a full garbage collection of the "
                f"process heap, the others at most {blocked['max_without_full_gc']:.2f} ms "
                f"({blocked['calls_over_5_ms_without_full_gc']} over 5 ms)"
            )

    offline = wandb_offline.run(
        rounds=int(os.environ.get("BENCH_ROUNDS", "7")),
        scale=float(os.environ.get("BENCH_SCALE", "1")),
    )
    table = Table(title="W&B offline, 10,000 steps x 4 metrics, until the run file holds its "
                  "exit (median of rounds)")  # fmt: skip
    for column in ("way", "start run, s", "loop + end, s", "end alone, s", "points/s"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for way, name in wandb_offline.NAMES.items():
        figures = offline["median_seconds"][way]
        table.add_row(
            f"{way}. {name}",
            f"{figures['start']:.3f}",
            f"{figures['loop']:.3f}",
            f"{figures['end']:.3f}",
            f"{offline['points_per_second'][way]:,.0f}",
        )
    console.print(table)
    console.print(
        f"a/w throughput (median of rounds): {offline['a_over_w_throughput']:.2f}; wandb's "
        f"finish() itself returned after {offline['median_seconds']['w']['finish_returned']:.3f} "
        "s, before the run file held the run"
    )

    faults = reliability.run()
    table = Table(title="A run through two mlflow server crashes (SIGKILL, restart, PostgreSQL)")
    for column in ("points logged", "found by MlflowClient", "duplicates", "missing",
                   "loop blocked, median ms", "max ms"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_row(
        f"{faults['points_logged']:,}",
        f"{faults['points_found']:,}",
        str(faults["duplicates"]),
        str(faults["missing"]),
        f"{faults['blocked_median_ms']:.3f}",
        f"{faults['blocked_max_ms']:.1f}",
    )
    console.print(table)

    peaks = memory.run()
    table = Table(title="Peak memory of a run logging through trackstack (local store)")
    columns = ("points", "RSS before, MiB", "peak RSS, MiB", "no-op peak, MiB", "seconds",
               "journal bytes/point", "fsyncs")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for points, figures in peaks.items():
        table.add_row(
            f"{int(points):,}",
            f"{figures['baseline_mib']:.1f}",
            f"{figures['peak_mib']:.1f}",
            f"{figures['noop_peak_mib']:.1f}",
            f"{figures['seconds']:.1f}",
            f"{figures['journal_bytes_per_point']:.1f}",
            str(figures["fsyncs"]),
        )
    console.print(table)

    reads = read_scale.run(rounds=int(os.environ.get("BENCH_ROUNDS", "5")))
    table = Table(title="Reading runs back from a local mlflow server (median seconds)")
    for column in ("what", "trackstack", "MLflow's own", "ratio"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for what, key, theirs in (
        ("list_runs of 500 runs x 20 metrics", "list_500_runs", "search_runs"),
        ("compare_runs of 10 runs x 50 metrics", "compare_10_runs", "search_runs"),
        ("get_run, 50 histories x 1,000 steps", "get_run_50_keys_1000_steps", "client_8_threads"),
    ):
        figures = reads[key]
        table.add_row(what, f"{figures['trackstack']:.3f}", f"{figures[theirs]:.3f} ({theirs})",
                      f"{figures['ratio']:.2f}x")  # fmt: skip
    console.print(table)
    table = Table(title="A 200-step script over HTTP, the whole process (median of rounds)")
    for column in ("way", "wall, s", "peak MiB", "trackstack's wall ratio", "trackstack's MiB more",
                   "sender process"):  # fmt: skip
        table.add_column(column, justify="left" if column == "way" else "right")
    for way, figures in reads["short_script"].items():
        table.add_row(way, f"{figures['wall_seconds']:.2f}", f"{figures['peak_mib']:.0f}",
                      f"{figures['wall_ratio']:.2f}x", f"{figures['peak_mib_more']:+.0f}",
                      "yes" if figures["sender_process"] else "no")  # fmt: skip
    console.print(table)
    listing = reads["wandb_offline_list"]
    console.print(
        f"W&B offline: list_runs of {listing['runs']} runs {listing['list_seconds']:.2f} s; "
        f"reading every history too {listing['list_and_every_history_seconds']:.2f} s"
    )

    loggers = lightning_loggers.run(rounds=int(os.environ.get("BENCH_ROUNDS", "5")),
                                    scale=float(os.environ.get("BENCH_SCALE", "1")))  # fmt: skip
    table = Table(title=f"Lightning loggers, {loggers['steps']:,} steps x 4 metrics: "
                  "log_metrics + save() per step, then finalize (median of rounds)")  # fmt: skip
    for column in ("logger", "loop, ms/step", "until complete, s", "theirs / ours (range)"):
        table.add_column(column, justify="left" if column == "logger" else "right")
    for backend, names in lightning_loggers.PAIRS.items():
        figures = loggers[backend]
        for side, name in zip(("theirs", "ours"), names, strict=True):
            ratio = ""
            if side == "ours":
                low, high = figures["theirs_over_ours_loop_per_step_range"]
                ratio = (f"loop {figures['theirs_over_ours_loop_per_step']:.1f}x "
                         f"({low:.1f}-{high:.1f}), complete "
                         f"{figures['theirs_over_ours_complete']:.2f}x")  # fmt: skip
            table.add_row(name, f"{figures[side]['loop_per_step'] * 1000:.3f}",
                          f"{figures[side]['complete']:.2f}", ratio)  # fmt: skip
    console.print(table)

    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        "versions": {
            d: _version(d) for d in ("trackstack", "mlflow", "wandb", "lightning", "torch")
        },
        "import_cost": imports,
        "mlflow_throughput": throughput,
        "wandb_offline": offline,
        "server_crashes": faults,
        "memory": peaks,
        "read_scale": reads,
        "lightning_loggers": loggers,
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
