"""Benchmarks as packages: the template's benchmark end to end, a lab's real file shapes, checksums."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from facebench import BenchmarkSpec, ModelSpec, plugins
from facebench.benchmarks import verify_stimuli, write_checksums
from facebench.cli import main
from facebench.errors import ConfigError, DataError
from facebench.registry import Entry, Registry, build_registry, get_registry
from facebench.scaffold import write_plugin
from facebench.tiny_model import TinyConvNet

from .conftest import FIXTURES, face_bytes


def _use(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("registry", "experiment", "benchmarks", "datasets", "cli"):
        monkeypatch.setattr(f"facebench.{module}.get_registry", lambda: registry)


def _with_benchmark(spec: BenchmarkSpec) -> Registry:
    base = get_registry()
    registry = Registry(plugins=base.plugins)
    for entry in base:
        registry.add(entry)
    registry.add(Entry("benchmark", spec, "lab-test", "0.1"))
    return registry


@pytest.fixture
def template_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``facebench new benchmark lab-faces``, registered in-process as its entry point would be."""
    folder = write_plugin("lab-faces", tmp_path, template_name="benchmark")
    monkeypatch.syspath_prepend(str(folder / "src"))
    module = importlib.import_module("lab_faces.plugin")
    pm = plugins.new_plugin_manager()
    info = plugins.PluginInfo(name="lab-faces", version="0.1.0", entry_point="lab_faces = lab_faces.plugin")
    plugins.register_module(pm, module, info, "lab-faces:lab_faces")
    registry = build_registry(pm, {"lab-faces:lab_faces": info})
    for entry in get_registry():
        registry.add(entry)
    registry.add(Entry("model", ModelSpec("tiny", TinyConvNet, "tiny test network"), "facebench-tests", "0"))
    _use(registry, monkeypatch)
    yield folder
    for name in [m for m in sys.modules if m == "lab_faces" or m.startswith("lab_faces.")]:
        del sys.modules[name]


def test_template_benchmark_runs_end_to_end(template_benchmark: Path, tmp_path: Path) -> None:
    from lab_faces.example_stimuli import write_example_stimuli

    stimuli = write_example_stimuli(tmp_path / "stimuli")
    out = tmp_path / "results"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--benchmark",
            "lab-faces",
            "--images",
            str(stimuli),
            "--model",
            "tiny",
            "--output",
            str(out),
            "--no-cache",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    benchmark = document["experiment"]["benchmark"]
    assert benchmark["name"] == "lab-faces" and benchmark["plugin"] == "lab-faces"
    assert sorted(task["name"] for task in document["tasks"]) == ["Similarity", "Upright", "Views"]
    views = {r["condition"] for r in document["metrics"] if r["task"] == "Views"}
    assert views == {"Frontal - Frontal - Same", "Frontal - Half Left", "Frontal - Frontal - Diff"}
    percentiles = template_benchmark / "src" / "lab_faces" / "benchmark" / "human" / "human_percentiles.csv"
    assert document["settings"]["human_percentiles"] == str(percentiles)
    report = (out / "report.html").read_text()  # the ranking covers the tasks with human data
    assert f"Human percentiles: <code>{percentiles}</code>" in report
    assert "<th>Upright (layer)</th>" in report or "Upright (layer)" in report
    assert "Similarity (layer)" in report and "Views (layer)" not in report


def test_template_benchmark_is_listed_and_described(template_benchmark: Path) -> None:
    listing = CliRunner().invoke(main, ["list", "benchmarks"])
    assert listing.exit_code == 0 and "\nlab-faces  lab-faces" in listing.output
    described = json.loads(CliRunner().invoke(main, ["describe", "lab-faces", "--json"]).output)
    assert described["kind"] == "benchmark"
    assert described["benchmark_file"] == str(
        template_benchmark / "src" / "lab_faces" / "benchmark" / "benchmark.toml"
    )
    assert [o["name"] for o in described["options"]] == ["images"]


def test_template_benchmark_refuses_changed_stimuli(template_benchmark: Path, tmp_path: Path) -> None:
    from lab_faces.example_stimuli import write_example_stimuli

    stimuli = write_example_stimuli(tmp_path / "stimuli")
    (stimuli / "id0_v0.ppm").write_bytes((stimuli / "id0_v1.ppm").read_bytes())
    (stimuli / "id3_v2.ppm").unlink()
    result = CliRunner().invoke(
        main, ["run", "--benchmark", "lab-faces", "--images", str(stimuli), "--model", "vgg16"]
    )
    assert result.exit_code == 2
    assert (
        "1 listed images are missing: id3_v2.ppm; 1 images differ from the published ones: id0_v0.ppm"
        in result.output
    )
    no_images = CliRunner().invoke(main, ["run", "--benchmark", "lab-faces", "--model", "vgg16"])
    assert no_images.exit_code == 2 and "give your copy with --images DIR" in no_images.output


def test_checksums_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "faces"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "x.jpg").write_bytes(face_bytes("a", 0))
    (folder / "y.jpg").write_bytes(face_bytes("b", 0))
    listing = write_checksums(folder, tmp_path / "stimuli.csv")
    assert verify_stimuli(folder, listing) == 2
    (folder / "y.jpg").write_bytes(face_bytes("b", 1))
    with pytest.raises(DataError, match="1 images differ from the published ones: y"):
        verify_stimuli(folder, listing)


def test_lab_benchmark_from_real_file_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facebench.experiment import experiment_from_flags
    from facebench.pairs import read_pairs_file

    folder = tmp_path / "lab"
    shutil.copytree(FIXTURES / "lab_benchmark", folder)
    stimuli = tmp_path / "stimuli"
    for listing in folder.glob("*.*"):
        if listing.name in ("benchmark.toml", "human_percentiles.csv"):
            continue
        pairs = read_pairs_file(listing)
        for view, name in enumerate(sorted(set(pairs["img1"]) | set(pairs["img2"]))):
            (stimuli / name).parent.mkdir(parents=True, exist_ok=True)
            (stimuli / name).write_bytes(face_bytes(name.split("/")[0][:12], view))
    write_checksums(stimuli, folder / "stimuli.csv")
    _use(_with_benchmark(BenchmarkSpec("lab", lambda: folder / "benchmark.toml")), monkeypatch)
    flags = dict(pairs=None, images=str(stimuli), layers=None, metric=None, device=None, batch_size=None)
    flags |= dict(output=str(tmp_path / "out"), cache_dir=None, no_cache=True)
    experiment = experiment_from_flags(None, ["vgg16"], [], benchmark="lab", **flags)
    tasks, _ = experiment.prepare()  # reads and checks every pairs file and image
    by_name = {task.name: task for task in tasks}
    assert sorted(by_name) == sorted(
        ["LFW", "Other Race Effect - Asian", "View Invariant", "IL Celebs - Familiar Performance"]
    )
    assert len(by_name["LFW"].pairs_df) == 12 and len(by_name["Other Race Effect - Asian"].pairs_df) == 10
    assert sorted(by_name["View Invariant"].pairs_df["cond"].unique()) == [
        "Frontal - Frontal - Diff",
        "Frontal - Frontal - Same",
        "Frontal - Half Left",
        "Frontal - Quarter Left",
    ]
    assert "Unnamed: 0" not in by_name["IL Celebs - Familiar Performance"].pairs_df.columns
    assert experiment.human_percentiles == folder / "human_percentiles.csv"
    assert (
        experiment.benchmark["sha256"] == hashlib.sha256((folder / "benchmark.toml").read_bytes()).hexdigest()
    )


def test_benchmark_on_a_registered_dataset(lfw_copy: Path, tmp_path: Path, monkeypatch) -> None:
    from facebench.experiment import experiment_from_flags

    toml = tmp_path / "bench" / "benchmark.toml"
    toml.parent.mkdir()
    toml.write_text(
        f'[stimuli]\ndataset = "lfw:path={lfw_copy}"\n\n'
        '[[tasks]]\nplugin = "accuracy"\nname = "LFW folds"\nlabel_column = "same"\nfold_column = "fold"\n'
    )
    _use(_with_benchmark(BenchmarkSpec("on-lfw", lambda: toml)), monkeypatch)
    flags = dict(pairs=None, images=None, layers=None, metric=None, device=None, batch_size=None)
    flags |= dict(output=str(tmp_path / "out"), cache_dir=None, no_cache=True)
    with pytest.warns(UserWarning, match="is not the published pairs.txt"):
        experiment = experiment_from_flags(None, ["vgg16"], [], benchmark="on-lfw", **flags)
    (task,) = experiment.tasks
    assert task.name == "LFW folds" and task.options["images_path"] == lfw_copy / "lfw"
    assert experiment.dataset["name"] == "lfw" and experiment.benchmark["name"] == "on-lfw"
    assert len(pd.read_csv(task.options["pairs_file_path"])) == 8


def test_benchmark_with_shipped_stimuli(tmp_path: Path, monkeypatch) -> None:
    from facebench.experiment import experiment_from_flags

    toml = tmp_path / "bench" / "benchmark.toml"
    (tmp_path / "bench" / "stimuli").mkdir(parents=True)
    (tmp_path / "bench" / "pairs.csv").write_text("img1,img2,same\na.jpg,b.jpg,1\n")
    toml.write_text('[stimuli]\npath = "stimuli"\n\n[[tasks]]\nplugin = "accuracy"\npairs = "pairs.csv"\n')
    _use(_with_benchmark(BenchmarkSpec("shipped", lambda: toml)), monkeypatch)
    flags = dict(pairs=None, images=None, layers=None, metric=None, device=None, batch_size=None)
    flags |= dict(output=str(tmp_path / "out"), cache_dir=None, no_cache=True)
    experiment = experiment_from_flags(None, ["vgg16"], [], benchmark="shipped", **flags)
    (task,) = experiment.tasks
    assert task.options["images_path"] == tmp_path / "bench" / "stimuli"
    assert task.options["pairs_file_path"] == tmp_path / "bench" / "pairs.csv"
    assert experiment.benchmark["stimuli"] == str(tmp_path / "bench" / "stimuli")
    toml.write_text('[stimuli]\npath = "s"\ndataset = "lfw"\n')
    with pytest.raises(ConfigError, match="exactly one of dataset"):
        experiment_from_flags(None, ["vgg16"], [], benchmark="shipped", **flags)
