"""Benchmarks by name: a lab's tasks, stimuli and human reference data, published as a package.

A benchmark is registered with a :class:`facebench.registry.BenchmarkSpec` (hook
``register_benchmarks``) whose target returns the path of its ``benchmark.toml``::

    description = "Inversion and other-race effects, Lab X (2024)"
    human_percentiles = "human/human_percentiles.csv"   # optional: human bands and ranking

    [stimuli]                     # where the images come from: one of
    dataset = "lfw"               # a registered dataset (its images, and its pairs for tasks naming none)
    path = "stimuli"              # a folder shipped with the benchmark
    checksums = "stimuli.csv"     # the user's own folder (--images DIR), checked against image,sha256

    [[tasks]]                     # as in an experiment file; images default to the stimuli
    plugin = "accuracy"
    pairs = "tasks/upright.csv"

Relative paths resolve against the ``benchmark.toml`` folder. ``facebench run --benchmark NAME``
replaces the experiment's tasks with the benchmark's and uses its human percentiles.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebench.errors import ConfigError, DataError
from facebench.options import parse_spec_string
from facebench.registry import Registry, get_registry
from facebench.textfiles import read_utf8

if TYPE_CHECKING:
    from facebench.experiment import Experiment

BENCHMARK_KEYS = frozenset({"description", "human_percentiles", "stimuli", "tasks"})
STIMULI_KEYS = frozenset({"dataset", "path", "checksums"})
SHOWN = 5


def apply_benchmark(
    experiment: Experiment,
    text: str | tuple[str, dict[str, Any]],
    given_tasks: bool = False,
    images: str | None = None,
    data_dir: str | Path | None = None,
    registry: Registry | None = None,
) -> None:
    """Give ``experiment`` the tasks, stimuli and human percentiles of ``--benchmark NAME``
    (``text`` may be parsed already: ``(name, options)``)."""
    from facebench.experiment import _tables, task_config

    name, options = parse_spec_string(text) if isinstance(text, str) else text
    if set(options) - {"images"}:
        raise ConfigError(
            f"--benchmark {name}: unknown option(s) {', '.join(sorted(set(options) - {'images'}))}"
        )
    if given_tasks:
        raise ConfigError(
            f"--benchmark {name} brings its own tasks; leave out --task or [[tasks]] (or use --dataset)"
        )
    registry = registry or get_registry()
    entry = registry.get("benchmark", name)
    path = Path(entry.spec.load()())
    data = read_benchmark(path)
    where = f"benchmark {name} ({path})"
    tasks = [
        task_config(t, path.parent, f"{where}: tasks[{i}]")
        for i, t in enumerate(_tables(data, "tasks", where))
    ]
    if not tasks:
        raise ConfigError(f"{where}: has no [[tasks]]")
    stimuli = data.get("stimuli", {})
    record: dict[str, Any] = {
        "name": name,
        "plugin": entry.plugin,
        "plugin_version": entry.plugin_version,
        "file": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    if "dataset" in stimuli:
        from facebench.datasets import dataset_tasks

        tasks, experiment.dataset = dataset_tasks(str(stimuli["dataset"]), tasks, data_dir, registry)
    else:
        folder = _stimuli_folder(stimuli, path, options.get("images") or images, where)
        for task in tasks:
            task.options.setdefault("images_path", folder)
        record["stimuli"] = str(folder)
    experiment.tasks = tasks
    if data.get("human_percentiles"):
        percentiles = path.parent / str(data["human_percentiles"])
        if not percentiles.is_file():
            raise ConfigError(f"{where}: human_percentiles {str(percentiles)!r} does not exist")
        experiment.human_percentiles = percentiles
    experiment.benchmark = record


def read_benchmark(path: Path) -> dict[str, Any]:
    """A ``benchmark.toml``, its keys checked."""
    if not path.is_file():
        raise ConfigError(f"benchmark file {str(path)!r} does not exist; reinstall the benchmark's package")
    try:
        data = tomllib.loads(read_utf8(path, "benchmark file", ConfigError))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - BENCHMARK_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(BENCHMARK_KEYS))}"
        )
    stimuli = data.get("stimuli", {})
    if not isinstance(stimuli, dict) or len(set(stimuli) & STIMULI_KEYS) != 1 or set(stimuli) - STIMULI_KEYS:
        raise ConfigError(
            f"{path}: [stimuli] needs exactly one of dataset = ..., path = ... or checksums = ..."
        )
    return data


def verify_stimuli(folder: Path, checksums: Path) -> int:
    """Check that every image listed in ``checksums`` (columns ``image``, ``sha256``) is in
    ``folder`` with those bytes; return how many were checked."""
    from facebench.pairs import read_table_file

    table = read_table_file(checksums)
    if "sha256" not in table.columns:
        raise DataError(f"{checksums}: needs the columns image and sha256")
    missing, different = [], []
    for image, expected in zip(table["image"], table["sha256"], strict=True):
        file = folder / str(image)
        if not file.is_file():
            missing.append(str(image))
        elif hashlib.sha256(file.read_bytes()).hexdigest() != str(expected).strip().lower():
            different.append(str(image))
    problems = [
        f"{len(found)} {what}: {', '.join(found[:SHOWN])}"
        for found, what in (
            (missing, "listed images are missing"),
            (different, "images differ from the published ones"),
        )
        if found
    ]
    if problems:
        raise DataError(
            f"stimulus folder {folder} does not match {checksums.name}: {'; '.join(problems)}. "
            f"Use the benchmark's original images, unchanged"
        )
    return len(table)


def _stimuli_folder(stimuli: dict[str, Any], path: Path, images: str | None, where: str) -> Path:
    if "path" in stimuli:
        return path.parent / str(stimuli["path"])
    if not images:
        raise ConfigError(
            f"{where}: its stimuli are not distributed with it; give your copy with --images DIR "
            f"(it is checked against {stimuli['checksums']})"
        )
    folder = Path(images).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{where}: the stimulus folder {str(folder)!r} does not exist")
    verify_stimuli(folder, path.parent / str(stimuli["checksums"]))
    return folder


def write_checksums(folder: str | Path, output: str | Path) -> Path:
    """Write ``output`` (``image,sha256``) for every file under ``folder``: a benchmark's
    ``[stimuli] checksums`` file."""
    import pandas as pd

    from facebench.results import write_csv_atomic

    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    rows = [(p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]
    return write_csv_atomic(pd.DataFrame(rows, columns=["image", "sha256"]), output)
