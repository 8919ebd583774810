"""The ``facebench`` command. Start-up stays light: torch and model libraries load only in the
commands that need them."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from facebench.errors import FacebenchError
from facebench.plugins import core_version
from facebench.registry import KINDS, Registry, get_registry

LIST_SECTIONS = ("models", "tasks", "metrics", "plugins")


class FacebenchGroup(click.Group):
    """Prints a :class:`FacebenchError` as one line on stderr and exits with status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FacebenchError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=FacebenchGroup)
@click.version_option(core_version(), prog_name="facebench")
def main() -> None:
    """Compare neural networks with human face perception."""


def registry_listing(registry: Registry) -> dict[str, list[dict[str, Any]]]:
    """The JSON shape of ``facebench list --json``."""
    listing: dict[str, list[dict[str, Any]]] = {
        f"{kind}s": [entry.to_dict() for entry in registry.entries(kind)] for kind in KINDS
    }
    for (kind, name), plugins in registry.conflicts.items():
        for item in listing[f"{kind}s"]:
            if item["name"] == name:
                item["conflict"] = plugins
    listing["plugins"] = [info.to_dict() for info in registry.plugins]
    return listing


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Left-aligned columns, a header and a rule."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in [header, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines)


@main.command("list")
@click.argument("section", required=False, type=click.Choice(LIST_SECTIONS))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def list_command(section: str | None, as_json: bool) -> None:
    """List registered models, tasks, metrics and plugins (or one SECTION)."""
    listing = registry_listing(get_registry())
    sections = [section] if section else list(LIST_SECTIONS)
    if as_json:
        click.echo(json.dumps({name: listing[name] for name in sections}, indent=2))
        return
    for name in sections:
        click.secho(f"{name.capitalize()}:", bold=True)
        if name == "plugins":
            rows = [[p["name"], p["version"], p["status"], p.get("error") or ""] for p in listing[name]]
            header = ["name", "version", "status", "error"]
        else:
            rows = [
                [
                    e["name"] + (" (CONFLICT: " + ", ".join(e["conflict"]) + ")" if "conflict" in e else ""),
                    e["plugin"],
                    e["description"],
                ]
                for e in listing[name]
            ]
            header = ["name", "plugin", "description"]
        click.echo(format_table(rows, header) if rows else "  (none installed)")
        click.echo()


@main.command("layers")
@click.argument("model")
def layers_command(model: str) -> None:
    """Print the extractable layer names of MODEL (NAME or NAME:key=value,...)."""
    from facebench.options import parse_spec_string

    name, options = parse_spec_string(model)
    built = get_registry().create("model", name, **options)
    for layer in built.layer_names():
        click.echo(layer)


def run_and_report(experiment: Any, progress: bool) -> None:
    """Run ``experiment``, print the summary and failures; exit 1 when something failed."""
    from facebench.experiment import run_experiment

    try:
        manager = run_experiment(experiment, progress=progress, print_log=progress)
    except KeyboardInterrupt:
        click.secho(f"\nInterrupted; results finished so far are in {experiment.output}", fg="red", err=True)
        sys.exit(130)
    click.echo(summary_text(manager))
    click.echo(f"\nResults written to {experiment.output}")
    if manager.failures:
        click.secho(manager.failure_report(), fg="red", err=True)
        sys.exit(1)


def summary_text(manager: Any) -> str:
    """The headline metric of every task, per model and layer, as a table."""
    from facebench.results import metric_columns

    rows = []
    for task_name, performance in manager.tasks_performance_dfs.items():
        task = manager.tasks[task_name]
        headline = task.plot_columns or metric_columns(performance)
        columns = [c for c in headline if c in performance.columns][:2]
        for record in performance.to_dict("records"):
            condition = record.get("Condition")
            label = task_name if not isinstance(condition, str) else f"{task_name} - {condition}"
            values = ", ".join(f"{c} {record[c]:.3f}" for c in columns)
            rows.append([label, str(record["Model Name"]), str(record["Layer Name"]), values])
    return format_table(rows, ["task", "model", "layer", "metrics"]) if rows else "(no results)"


@main.command("run")
@click.argument("experiment_file", required=False, type=click.Path(dir_okay=False))
@click.option("--model", "models", multiple=True, metavar="NAME:key=value,...", help="A model (repeatable).")
@click.option("--task", "tasks", multiple=True, metavar="NAME:key=value,...", help="A task (repeatable).")
@click.option("--pairs", type=click.Path(), help="Pairs file for tasks that do not name one.")
@click.option("--images", type=click.Path(), help="Images folder for tasks that do not name one.")
@click.option("--layers", metavar="L1,L2,...", help="Layers for models that do not name them.")
@click.option("--metric", help="Distance metric for tasks that do not name one (facebench list metrics).")
@click.option("--device", help="auto, cpu, cuda, cuda:1 or mps (default: each model's own, auto).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per forward pass (default 32).")
@click.option("--output", type=click.Path(file_okay=False), help="Results folder.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Embedding cache folder.")
@click.option("--no-cache", is_flag=True, help="Keep embeddings in a temporary folder only.")
@click.option("--quiet", is_flag=True, help="No progress bars or log lines.")
def run_command(experiment_file: str | None, quiet: bool, **flags: Any) -> None:
    """Run an experiment: every model on every task, results in the output folder.

    \b
    facebench run experiment.toml
    facebench run --model vgg16:pretrained=false --layers features.4 \\
        --task accuracy --pairs pairs.csv --images faces/ --output results/

    Names, options, pairs files and images are all checked before any model is built.
    Exit status: 0 when everything ran, 1 when a model or task failed (the others' results
    are still written), 2 for a configuration error.
    """
    from facebench.experiment import experiment_from_flags

    experiment = experiment_from_flags(experiment_file, **flags)
    run_and_report(experiment, progress=not quiet)


@main.command("demo")
@click.option("--output", default="facebench-demo", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--model", "model_spec", metavar="NAME:key=value,...", help="Model (default: random-weight VGG16)."
)
@click.option("--device", help="auto, cpu, cuda or mps.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--stimuli-only", is_flag=True, help="Only write the stimuli and experiment.toml.")
@click.option("--quiet", is_flag=True, help="No progress bars or log lines.")
def demo_command(
    output: str, model_spec: str | None, device: str | None, batch_size: int, stimuli_only: bool, quiet: bool
) -> None:
    """Generate synthetic face stimuli and run every task on them (no download).

    Writes OUTPUT/stimuli (images and pairs files), OUTPUT/experiment.toml and, unless
    --stimuli-only, OUTPUT/results. Re-run or edit it with `facebench run OUTPUT/experiment.toml`.
    """
    from facebench.demo import prepare_demo
    from facebench.experiment import Experiment

    experiment_file = prepare_demo(output, model_spec=model_spec, device=device, batch_size=batch_size)
    click.echo(f"Stimuli and {experiment_file} written to {output}")
    if stimuli_only:
        return
    run_and_report(Experiment.from_toml(experiment_file), progress=not quiet)
