"""The ``facebench`` command. Start-up stays light: torch and model libraries load only in the
commands that need them."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from facebench.errors import FacebenchError
from facebench.plugins import core_version
from facebench.registry import KINDS, PLURAL, Registry, get_registry

LIST_SECTIONS = ("models", "tasks", "metrics", "executors", "analyses", "datasets", "benchmarks", "plugins")


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


def registry_listing(registry: Registry, with_traceback: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The JSON shape of ``facebench list --json``."""
    listing: dict[str, list[dict[str, Any]]] = {
        PLURAL[kind]: [entry.to_dict() for entry in registry.entries(kind)] for kind in KINDS
    }
    for (kind, name), plugins in registry.conflicts.items():
        for item in listing[PLURAL[kind]]:
            if item["name"] == name:
                item["conflict"] = plugins
    listing["plugins"] = [info.to_dict(with_traceback) for info in registry.plugins]
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
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (with every entry's options) instead."
)
@click.option("--traceback", "tracebacks", is_flag=True, help="Print each broken plugin's full traceback.")
def list_command(section: str | None, as_json: bool, tracebacks: bool) -> None:
    """List registered models, tasks, metrics and plugins (or one SECTION).

    The tables import no plugin code; --json reads each entry's options (cached per installed
    plugin version and source files, so only a changed plugin's code is imported).
    """
    registry = get_registry()
    listing = registry_listing(registry, with_traceback=tracebacks)
    sections = [section] if section else list(LIST_SECTIONS)
    if as_json:
        add_options(registry, listing, sections)
        click.echo(json.dumps({name: listing[name] for name in sections}, indent=2))
        return
    for name in sections:
        click.secho(f"{name.capitalize()}:", bold=True)
        if name == "plugins":
            rows = [plugin_row(p) for p in listing[name]]
            header = ["name", "version", "status", "provides", "hooks", "error or warning"]
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
    if tracebacks:
        for info in registry.plugins:
            if info.traceback:
                click.secho(f"Traceback of the broken plugin {info.name} ({info.entry_point}):", bold=True)
                click.echo(info.traceback)


def plugin_row(plugin: dict[str, Any]) -> list[str]:
    """One row of ``facebench list plugins``."""
    singular = {plural: kind for kind, plural in PLURAL.items()}
    provides = ", ".join(
        f"{count} {kind if count != 1 else singular.get(kind, kind)}"
        for kind, count in plugin["provides"].items()
    )
    message = plugin.get("error") or (f"warning: {plugin['warning']}" if plugin.get("warning") else "")
    hooks = ", ".join(plugin["hooks"])
    return [plugin["name"], plugin["version"], plugin["status"], provides, hooks, message]


def add_options(registry: Registry, listing: dict[str, list[dict[str, Any]]], sections: list[str]) -> None:
    """Add each entry's ``options`` (or ``options_error`` when its target cannot be imported)."""
    from facebench.option_cache import OptionCache

    cache = OptionCache()
    for kind in KINDS:
        if PLURAL[kind] not in sections:
            continue
        for item, entry in zip(listing[PLURAL[kind]], registry.entries(kind), strict=True):
            try:
                item["options"] = cache.options(entry)
            except FacebenchError as exc:
                item["options"], item["options_error"] = None, str(exc)
    cache.save()


@main.command("describe")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), help="Which kind NAME is, when two kinds share it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--available", is_flag=True, help="List the architectures a model family offers.")
def describe_command(name: str, kind: str | None, as_json: bool, available: bool) -> None:
    """Describe a model, task or metric: its plugin, options (type, default, help) and defaults.

    \b
    facebench describe vgg16
    facebench describe correlation --kind metric --json
    facebench describe timm --available
    """
    from facebench.describe import available_architectures, describe_entry, find_entry

    entry = find_entry(get_registry(), name, kind)  # type: ignore[arg-type]
    if available:
        names = available_architectures(entry)
        click.echo(json.dumps(names, indent=2) if as_json else "\n".join(names))
        return
    info = describe_entry(entry)
    click.echo(json.dumps(info, indent=2) if as_json else description_text(info))


def description_text(info: dict[str, Any]) -> str:
    """``facebench describe`` without --json."""
    lines = [f"{info['name']} ({info['kind']}): {info['description']}".rstrip(": ")]
    lines.append(f"Plugin: {info['plugin']} {info['plugin_version']}  ({info['target']})")
    if info["doc"]:
        lines += ["", info["doc"]]
    lines.append("")
    if info["kind"] == "model":
        lines.append(f"Default layers: {', '.join(info['default_layers'])}")
        from facebench.reductions import MEANINGS

        reduction = info["default_reduction"]
        lines.append(f"Default reduction: {reduction} ({MEANINGS.get(reduction, 'see the docs')})")
        lines.append(f"Reductions: {', '.join(MEANINGS)} (reduction=NAME or a layer -> NAME table)")
        preprocessing = info["preprocessing"]
        if preprocessing is None:
            lines.append(f"Preprocessing: {info.get('preprocessing_note', 'unknown')}")
        else:
            lines.append(
                "Preprocessing: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in preprocessing.items())
            )
    elif info["kind"] == "task":
        keys = ("pairs_file", "images_table", "required_columns", "required_table_columns", "plot_columns")
        for key in keys:
            if key in info:
                value = ", ".join(info[key]) if isinstance(info[key], list) else info[key]
                lines.append(f"{key.replace('_', ' ').capitalize()}: {value}")
    elif info["kind"] == "metric":
        lines.append("Bounded (1 - similarity): " + ("yes" if info["bounded"] else "no"))
        lines.append("Symmetric: " + ("yes" if info["symmetric"] else "no"))
    elif info["kind"] in ("dataset", "benchmark"):
        from facebench.datasets import details_lines

        lines += details_lines(info)
    if info["available_architectures"]:
        lines.append(f"Architectures: facebench describe {info['name']} --available")
    lines += ["", "Options:"]
    rows = [[o["name"], o["type"], _default_text(o), o["help"]] for o in info["options"]]
    lines.append(format_table(rows, ["option", "type", "default", "help"]) if rows else "  (none)")
    return "\n".join(lines)


def _default_text(option: dict[str, Any]) -> str:
    from facebench.preprocessing import MODEL_DEFAULT

    if option["required"]:
        return "(required)"
    default = option["default"]
    return default if default == repr(MODEL_DEFAULT) else json.dumps(default)


@main.group("new")
def new_group() -> None:
    """Create a new plugin package from facebench's template."""


@new_group.command("plugin")
@click.argument("name")
@click.option(
    "--output", default=".", show_default=True, type=click.Path(file_okay=False), help="Parent folder."
)
def new_plugin_command(name: str, output: str) -> None:
    """Write the plugin package NAME: pyproject.toml (with the entry point), a model, a task, a
    metric, a README and tests that pass as generated.

    \b
    facebench new plugin lab-faces
    pip install -e "./lab-faces[test]" && pytest lab-faces
    """
    from facebench.scaffold import plugin_names, write_plugin

    folder = write_plugin(name, output)
    prefix = plugin_names(name)["prefix"]
    click.echo(f"Wrote {folder}: model {prefix}-net, task {prefix}-gap, metric {prefix}-linf")
    click.echo(f'Next: pip install -e "{folder}[test]" && pytest {folder} && facebench describe {prefix}-net')


@new_group.command("benchmark")
@click.argument("name")
@click.option(
    "--output", default=".", show_default=True, type=click.Path(file_okay=False), help="Parent folder."
)
def new_benchmark_command(name: str, output: str) -> None:
    """Write the benchmark package NAME: benchmark.toml (tasks, stimuli checksums, human data),
    pairs files in a lab's shapes, example stimuli and tests that pass as generated.

    \b
    facebench new benchmark lab-faces
    pip install -e "./lab-faces[test]" && pytest lab-faces
    """
    from facebench.scaffold import plugin_names, write_plugin

    folder = write_plugin(name, output, template_name="benchmark")
    prefix = plugin_names(name)["prefix"]
    click.echo(f"Wrote {folder}: benchmark {prefix}")
    click.echo(f'Next: pip install -e "{folder}[test]" && pytest {folder} && facebench describe {prefix}')


@main.command("layers")
@click.argument("model")
@click.option("--names", "names_only", is_flag=True, help="Print the extractable layer names, one per line.")
def layers_command(model: str, names_only: bool) -> None:
    """Print the layers of MODEL (NAME or NAME:key=value,...): each name, its module type, its
    output for one image (traced on the meta device), "*" beside the default layers, and whether
    it can be extracted. Every layer marked "yes" combines with the others in one run (one
    forward pass gives them all); a module run more than once per pass (torchvision ResNets
    reuse one relu per block) or never has no single output and is marked "no".

    \b
    facebench layers vgg16:pretrained=false
    facebench layers dinov2 --names
    """
    from facebench.layer_table import layer_rows, shape_text
    from facebench.options import parse_spec_string

    name, options = parse_spec_string(model)
    built = get_registry().create("model", name, **options)
    rows, traced = layer_rows(built)
    if names_only:
        click.echo("\n".join(row.name for row in rows if row.extractable))
    else:
        table = [
            [row.name + (" *" if row.default else ""), row.module_type, shape_text(row.shape), row.status()]
            for row in rows
        ]
        click.echo(format_table(table, ["layer", "type", "output (one image)", "extract"]))
        default = "the layers marked *" if built.extract_layers else "the final output ('output')"
        click.echo(f"Default: {default}. Layers marked yes combine in one run (one forward pass gives all).")
    if traced == "none":
        click.secho(
            "(a test forward pass failed, so layers run more than once per pass are not marked; "
            "extracting one is refused with the list of its calls)",
            fg="yellow",
            err=True,
        )


def run_and_report(experiment: Any, progress: bool) -> None:
    """Run ``experiment``, print the summary and failures; exit 1 when something failed."""
    from facebench.experiment import run_experiment
    from facebench.interrupt import Terminated
    from facebench.runfolder import INCOMPLETE, resolved_output

    try:
        manager = run_experiment(experiment, progress=progress, print_log=progress)
    except KeyboardInterrupt as exc:
        where = "; ".join(getattr(exc, "__notes__", [])) or "nothing was exported"
        how = "Stopped by SIGTERM" if isinstance(exc, Terminated) else "Interrupted"
        click.secho(f"\n{how}; {where}", fg="red", err=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    output = manager.output_folder or Path(experiment.output)
    click.echo(summary_text(manager))
    if output != resolved_output(experiment.output):
        click.secho(
            f"\nThis run is incomplete ({manager.status}); {experiment.output} keeps the previous "
            f"complete run, and this one is in {output}"
            if manager.status in INCOMPLETE
            else f"\n{experiment.output} now holds files facebench did not write, so this run is in {output}",
            fg="red",
            err=True,
        )
    click.echo(f"\nResults written to {output}")
    click.echo(report_line(output))
    if manager.failures or manager.status != "completed":
        click.secho(manager.failure_report() or f"status: {manager.status}", fg="red", err=True)
        sys.exit(1)


def report_line(results_dir: Path) -> str:
    """The closing line: where the run's report.html is (or that there is none)."""
    from facebench.report import REPORT_FILE

    report = results_dir / REPORT_FILE
    if not report.is_file():
        return "No report.html was written (see the failures)"
    return f"Report: {report.resolve().as_uri()}  (open it in a browser)"


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
@click.option("--table", type=click.Path(), help="Images table for tasks that read one and do not name one.")
@click.option(
    "--analysis",
    "analyses",
    multiple=True,
    metavar="NAME:key=value,...",
    help="An analysis across models, e.g. cka (repeatable; facebench list analyses).",
)
@click.option("--images", type=click.Path(), help="Images folder for tasks that do not name one.")
@click.option("--layers", metavar="L1,L2,...", help="Layers for models that do not name them.")
@click.option("--metric", help="Distance metric for tasks that do not name one (facebench list metrics).")
@click.option("--device", help="auto, cpu, cuda, cuda:1 or mps (default: each model's own, auto).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per forward pass (default 32).")
@click.option("--output", type=click.Path(file_okay=False), help="Results folder.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Embedding cache folder.")
@click.option("--no-cache", is_flag=True, help="Keep embeddings in a temporary folder only.")
@click.option(
    "--executor",
    metavar="NAME:key=value,...",
    help="Who embeds: local (default) or ray (facebench list executors).",
)
@click.option(
    "--ray-address", metavar="ADDR", help="Ray cluster to join (auto, or ray://HOST:10001); implies ray."
)
@click.option(
    "--data-path",
    type=click.Choice(["auto", "cpu", "device"]),
    help="Where JPEGs are decoded: device (GPU) or cpu (default auto: device for CUDA models).",
)
@click.option("--channels-last", is_flag=True, help="Run the networks in channels-last memory format.")
@click.option("--torch-compile", is_flag=True, help="Compile each network's forward with torch.compile.")
@click.option(
    "--dataset",
    metavar="NAME[:path=DIR]",
    help="A registered dataset (facebench list datasets): its standard protocol, or its files for --task.",
)
@click.option(
    "--benchmark", metavar="NAME", help="A registered benchmark: its tasks, stimuli and human data."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Folder holding datasets as DIR/<name> (default: FACEBENCH_DATA_DIR, else the user data folder).",
)
@click.option("--quiet", is_flag=True, help="No progress bars or log lines.")
def run_command(experiment_file: str | None, quiet: bool, **flags: Any) -> None:
    """Run an experiment: every model on every task, results in the output folder.

    \b
    facebench run experiment.toml
    facebench run --model vgg16:pretrained=false --layers features.4 \\
        --task accuracy --pairs pairs.csv --images faces/ --output results/
    facebench run --dataset lfw --model vgg16:pretrained=false
    facebench run --benchmark lab-faces --model vgg16:pretrained=false

    Names, options, pairs files, images (that they decode) and the output folder (that it
    can be written) are all checked before any model is built. Exit status: 0 when everything
    ran, 1 when a model or task failed or a file could not be written (the others' results
    are still written), 2 for a configuration error, 130 after Ctrl-C and 143 after SIGTERM
    (what finished is exported first).
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


@main.command("pairs")
@click.argument("dataset_dir", required=False, type=click.Path(file_okay=False))
@click.option("--from-lfw", "lfw_file", type=click.Path(dir_okay=False), help="Convert LFW's pairs.txt.")
@click.option("--output", type=click.Path(dir_okay=False), help="Pairs CSV to write.")
@click.option("--table", type=click.Path(dir_okay=False), help="Images table to write.")
@click.option("--folds", default=10, show_default=True, type=click.IntRange(min=1), help="Folds K.")
@click.option("--same", default=300, show_default=True, type=click.IntRange(min=0), help="Per fold.")
@click.option("--different", default=300, show_default=True, type=click.IntRange(min=0), help="Per fold.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--disjoint", is_flag=True, help="No identity in two folds.")
@click.option(
    "--min-images",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Skip identities with fewer distinct images.",
)
@click.pass_context
def pairs_command(
    ctx: click.Context,
    dataset_dir: str | None,
    lfw_file: str | None,
    output: str | None,
    table: str | None,
    **drawing: Any,
) -> None:
    """Make a verification pairs file from DATASET_DIR (one folder per identity), or convert LFW's.

    \b
    facebench pairs faces/ --output pairs.csv --folds 10 --same 300 --different 300 --seed 0
    facebench pairs --from-lfw pairs.txt --output lfw_pairs.csv [faces/]

    Files with identical bytes count once; identities with fewer than --min-images distinct
    images are skipped (and counted). Pairs are written fold by fold, each fold's same pairs
    first (LFW's order); run them with --task accuracy:label_column=same,fold_column=fold
    --images DATASET_DIR. --table writes an images table (image, identity) for probe tasks.
    With --from-lfw, DATASET_DIR (optional) is checked to hold every image.
    """
    from facebench.errors import ConfigError
    from facebench.pair_maker import (
        make_pairs,
        missing_images,
        pairs_images_table,
        read_lfw_pairs,
        scan_dataset,
    )
    from facebench.results import write_csv_atomic

    if output is None and table is None:
        raise ConfigError("facebench pairs: name the file(s) to write: --output (pairs), --table (images)")
    if lfw_file is not None:
        given = [f"--{k.replace('_', '-')}" for k in drawing if ctx.get_parameter_source(k).name != "DEFAULT"]
        if given:
            raise ConfigError(f"--from-lfw keeps LFW's own pairs and folds; {', '.join(given)} cannot apply")
        pairs = read_lfw_pairs(lfw_file)
        if dataset_dir is not None:
            missing = missing_images(pairs, dataset_dir)
            if missing:
                shown = ", ".join(repr(m) for m in missing[:5])
                raise ConfigError(f"{len(missing)} images of {lfw_file} are not in {dataset_dir!r}: {shown}")
        images = pairs_images_table(pairs)
        click.echo(f"{lfw_file}: {pairs['fold'].nunique()} folds, {len(images)} images")
    else:
        if dataset_dir is None:
            raise ConfigError("facebench pairs: give DATASET_DIR (a folder per identity) or --from-lfw")
        dataset = scan_dataset(dataset_dir, min_images=drawing.pop("min_images"))
        click.echo(f"{dataset_dir}: {dataset.summary()}")
        images = dataset.table()
        pairs = make_pairs(dataset, **drawing) if output is not None else None
    if output is not None and pairs is not None:
        write_csv_atomic(pairs, output)
        same = int(pairs["same"].sum())
        click.echo(
            f"Wrote {len(pairs)} pairs ({same} same, {len(pairs) - same} different) "
            f"in {pairs['fold'].nunique()} folds to {output}"
        )
    if table is not None:
        write_csv_atomic(images, table)
        click.echo(f"Wrote the images table ({len(images)} images) to {table}")


@main.command("extract")
@click.option("--model", "models", multiple=True, metavar="NAME:key=value,...", help="A model (repeatable).")
@click.option("--layers", metavar="L1,L2,...", help="Layers for models that do not name them.")
@click.option("--images", required=True, type=click.Path(file_okay=False), help="Images folder.")
@click.option("--table", type=click.Path(dir_okay=False), help="Images table (an image column): only these.")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Folder to write.")
@click.option(
    "--format",
    "fmt",
    default="npy",
    show_default=True,
    type=click.Choice(["npy", "hdf5", "parquet", "mat", "csv"]),
)
@click.option("--rdm", metavar="METRIC", help="Also write RDMs (a metric, or rsatoolbox:euclidean ...).")
@click.option("--device", help="auto, cpu, cuda, cuda:1 or mps (default: each model's own, auto).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Embedding cache folder.")
@click.option("--no-cache", is_flag=True, help="Keep embeddings in a temporary folder only.")
@click.option("--executor", metavar="NAME:key=value,...", help="Who embeds: local (default) or ray.")
@click.option("--data-path", default="auto", type=click.Choice(["auto", "cpu", "device"]))
@click.option("--quiet", is_flag=True, help="No progress bars.")
def extract_command(quiet: bool, **flags: Any) -> None:
    """Write every image's features per model and layer to files (npy, hdf5, parquet, mat, csv).

    \b
    facebench extract --model vgg16 --layers features.30,classifier.4 \\
        --images faces/ --output features/ --format hdf5 --rdm correlation

    Row i of every file is line i of OUTPUT/images.txt. Embeddings come from (and go to) the
    same cache as facebench run; the output folder is replaced whole, or not at all.
    """
    from facebench.extract import extract_from_flags

    try:
        result = extract_from_flags(progress=not quiet, **flags)
    except KeyboardInterrupt as exc:
        click.secho(f"\nInterrupted; {'; '.join(getattr(exc, '__notes__', []))}", fg="red", err=True)
        sys.exit(130)
    computed, cached = sum(result.computed.values()), sum(result.cached.values())
    click.echo(
        f"Wrote {len(result.files)} file(s) for {len(result.images)} images to {result.folder} "
        f"({computed} embedded now, {cached} from the cache)"
    )


@main.command("align")
@click.argument("dataset")
@click.option("--sheet", type=click.Path(dir_okay=False), help="Contact sheet to write (PNG or JPEG).")
@click.option("--template", type=click.Choice(["dlib", "arcface", "facenet", "crop"]), help="Default: crop.")
@click.option("--model", metavar="NAME", help="Align to this model's template instead.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Embedding cache (crops in aligned/).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder of datasets (DIR/<name>).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def align_command(quiet: bool, **flags: Any) -> None:
    """Align the faces of DATASET (an images folder or a dataset name) as align=mtcnn does.

    \b
    facebench align photos/ --model dlib-resnet --sheet aligned.png

    The crops go to the cache a run reads (a run with the same template does not detect again);
    the contact sheet shows each aligned face under its image's name, 100 per file.
    """
    from facebench.align_command import align_dataset

    click.echo(align_dataset(progress=not quiet, **flags).summary())


@main.command("report")
@click.argument("results_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="HTML file to write (default: RESULTS_DIR/report.html; for several runs "
    "comparison_<A>_vs_<B>.html in the current folder).",
)
@click.option(
    "--human-percentiles",
    type=click.Path(dir_okay=False, exists=True),
    help="Human percentiles table (default: the one results.json records).",
)
def report_command(results_dirs: tuple[str, ...], output: str | None, human_percentiles: str | None) -> None:
    """Write one self-contained HTML page for RESULTS_DIR, or compare several runs side by side.

    \b
    facebench report facebench-demo/results
    facebench report run-a/ run-b/ -o comparison.html

    The page holds every task's headline metrics (sortable), previews of the plots linked to
    the full-size files, failures, provenance and the human-likeness ranking (a comparison
    opens with what differs); it needs no network and recomputes nothing.
    """
    from facebench.report import write_report

    path = write_report(list(results_dirs), output, human_percentiles=human_percentiles)
    if output is None and len(results_dirs) > 1:
        click.echo(f"No -o given: the comparison is {path} in the current folder.")
    click.echo(f"Report: {path.resolve().as_uri()}")


@main.command("fetch")
@click.argument("dataset")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder of datasets (DIR/<name>).")
@click.option("--path", type=click.Path(file_okay=False), help="This dataset's own folder instead.")
@click.option("--base-url", metavar="URL", help="A mirror serving the dataset's files by name.")
def fetch_command(dataset: str, data_dir: str | None, path: str | None, base_url: str | None) -> None:
    """Download DATASET's files, verify their SHA-256 and unpack them (facebench list datasets).

    \b
    facebench fetch lfw
    facebench fetch lfw --base-url https://mirror.example.org/lfw
    """
    from facebench.datasets import dataset_root, fetch

    spec = get_registry().get("dataset", dataset).spec
    root = dataset_root(dataset, path, data_dir)
    for file in fetch(spec, root, base_url):  # type: ignore[arg-type]
        click.echo(f"{file}: checksum verified")
    click.echo(
        f"Run it with: facebench run --dataset {dataset}" + (f":path={root}" if path else "") + " --model M"
    )


@main.command("leaderboard")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HTML page to write.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="CSV table to write.")
@click.option(
    "--layer",
    "layers",
    multiple=True,
    metavar="MODEL=LAYER",
    help="A model's chosen layer (repeatable; default: its last extracted layer).",
)
def leaderboard_command(
    runs: tuple[str, ...], output: str | None, csv_path: str | None, layers: tuple[str, ...]
) -> None:
    """Rank the models of several run folders per benchmark or dataset metric.

    \b
    facebench leaderboard run-a/ run-b/ run-c/ -o leaderboard.html --csv leaderboard.csv

    Each row is a model's best layer or its chosen layer on one metric, with its interval and a
    link to the run's report; runs whose settings differ for the same benchmark are flagged.
    """
    from facebench.errors import ConfigError
    from facebench.leaderboard import build_leaderboard, parse_layer_choices, write_csv, write_html

    if output is None and csv_path is None:
        raise ConfigError(
            "facebench leaderboard: name the file(s) to write: -o FILE.html and/or --csv FILE.csv"
        )
    board = build_leaderboard([Path(run) for run in runs], parse_layer_choices(layers))
    if output:
        click.echo(f"Leaderboard: {write_html(board, output).resolve().as_uri()}")
    if csv_path:
        click.echo(f"Leaderboard table: {write_csv(board, csv_path)}")
    for warning in board.flags:
        click.secho(f"Flagged: {warning}", fg="yellow", err=True)
