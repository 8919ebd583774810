"""``dataset``/``benchmark``/``data_dir`` keys of an experiment file: the same tasks and results as
the ``--dataset``/``--benchmark``/``--data-dir`` flags, and errors that name the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from facebench.cli import main
from facebench.errors import ConfigError, UnknownNameError
from facebench.experiment import Experiment, experiment_from_flags
from facebench.registry import BenchmarkSpec

from .test_benchmarks import _use, _with_benchmark

pytestmark = pytest.mark.filterwarnings("ignore:.*is not the published pairs.txt:UserWarning")
MODEL = ["--model", "vgg16:pretrained=false", "--layers", "features.4"]


def _run(*args: str) -> object:
    return CliRunner().invoke(main, ["run", "--quiet", "--no-cache", *args], catch_exceptions=False)


def _data_dir(lfw_copy: Path) -> Path:
    """A folder of datasets holding the fixture copy as ``lfw``."""
    data = lfw_copy.parent / "data"
    data.mkdir()
    shutil.move(lfw_copy, data / "lfw")
    return data


def _per_pair(out: Path) -> pd.DataFrame:
    document = json.loads((out / "results.json").read_text())
    (name,) = [f for f in document["files"] if f.endswith(".csv") and "features.4" in f and "lfw" in f]
    return pd.read_csv(out / name)


def test_dataset_key_runs_as_the_flag_does(lfw_copy: Path, tmp_path: Path) -> None:
    _data_dir(lfw_copy)
    (tmp_path / "experiment.toml").write_text(
        'output = "from-file"\ndata_dir = "data"\ndataset = "lfw"\n\n'
        '[[models]]\nplugin = "vgg16"\nlayers = ["features.4"]\noptions = { pretrained = false }\n'
    )
    from_file = _run(str(tmp_path / "experiment.toml"))
    assert from_file.exit_code == 0, from_file.output
    flags = _run(
        "--dataset", "lfw", "--data-dir", str(tmp_path / "data"), *MODEL, "--output", str(tmp_path / "o")
    )
    assert flags.exit_code == 0, flags.output
    a, b = (json.loads((tmp_path / out / "results.json").read_text()) for out in ("from-file", "o"))
    assert a["experiment"]["dataset"] == b["experiment"]["dataset"]
    assert a["experiment"]["dataset"]["root"] == str(tmp_path / "data" / "lfw")
    assert [t["options"] for t in a["tasks"]] == [t["options"] for t in b["tasks"]]
    assert [(m["task"], m["values"]) for m in a["metrics"]] == [
        (m["task"], m["values"]) for m in b["metrics"]
    ]
    pd.testing.assert_frame_equal(_per_pair(tmp_path / "from-file"), _per_pair(tmp_path / "o"))
    assert len(_per_pair(tmp_path / "o")) == 8


def test_dataset_table_fills_the_files_tasks(lfw_copy: Path, tmp_path: Path) -> None:
    """``dataset = { name, path }`` (path against the file's folder) with [[tasks]]: their files
    are the dataset's, as for ``--dataset`` with ``--task``."""
    (tmp_path / "experiment.toml").write_text(
        'dataset = { name = "lfw", path = "lfw-copy" }\n'
        '[[models]]\nplugin = "vgg16"\n'
        '[[tasks]]\nplugin = "accuracy"\nmetric = "euclidean"\n'
        'options = { label_column = "same", n_folds = 2 }\n'
    )
    from_file = Experiment.from_toml(tmp_path / "experiment.toml")
    flags = dict(pairs=None, images=None, layers=None, metric="euclidean", device=None, batch_size=None)
    flags |= dict(output=None, cache_dir=None, no_cache=False)
    from_flags = experiment_from_flags(
        None, ["vgg16"], ["accuracy:label_column=same,n_folds=2"], dataset=f"lfw:path={lfw_copy}", **flags
    )
    assert [t.options for t in from_file.tasks] == [t.options for t in from_flags.tasks]
    assert from_file.tasks[0].options["images_path"] == lfw_copy / "lfw"
    assert from_file.dataset == from_flags.dataset


def test_task_flags_take_the_files_dataset(lfw_copy: Path, tmp_path: Path) -> None:
    data = _data_dir(lfw_copy)
    (tmp_path / "experiment.toml").write_text(f'dataset = "lfw"\ndata_dir = "{data.name}"\n')
    flags = dict(pairs=None, images=None, layers=None, metric=None, device=None, batch_size=None)
    flags |= dict(output=None, cache_dir=None, no_cache=False)
    experiment = experiment_from_flags(
        str(tmp_path / "experiment.toml"), ["vgg16"], ["accuracy:label_column=same"], **flags
    )
    (task,) = experiment.tasks
    assert task.plugin == "accuracy" and task.options["images_path"] == data / "lfw" / "lfw"
    assert experiment.dataset is not None and experiment.dataset["name"] == "lfw"


def test_benchmark_key_gives_the_flags_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "bench" / "benchmark.toml"
    (tmp_path / "bench" / "stimuli").mkdir(parents=True)
    (tmp_path / "bench" / "pairs.csv").write_text("img1,img2,same\na.jpg,b.jpg,1\n")
    toml.write_text('[stimuli]\npath = "stimuli"\n\n[[tasks]]\nplugin = "accuracy"\npairs = "pairs.csv"\n')
    _use(_with_benchmark(BenchmarkSpec("shipped", lambda: toml)), monkeypatch)
    path = tmp_path / "experiment.toml"
    path.write_text('benchmark = "shipped"\n[[models]]\nplugin = "vgg16"\n')
    flags = dict(pairs=None, images=None, layers=None, metric=None, device=None, batch_size=None)
    flags |= dict(output=None, cache_dir=None, no_cache=False)
    from_flags = experiment_from_flags(None, ["vgg16"], [], benchmark="shipped", **flags)
    from_file = Experiment.from_toml(path)
    assert [t.options for t in from_file.tasks] == [t.options for t in from_flags.tasks]
    assert from_file.tasks[0].options["images_path"] == tmp_path / "bench" / "stimuli"
    assert from_file.benchmark == from_flags.benchmark and from_file.benchmark["name"] == "shipped"
    path.write_text('benchmark = "shipped"\n[[tasks]]\nplugin = "accuracy"\n')
    with pytest.raises(ConfigError, match=f"{path.name}: --benchmark shipped brings its own tasks"):
        Experiment.from_toml(path)


def test_unknown_dataset_in_a_file_is_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "experiment.toml"
    path.write_text('dataset = "lfww"\n[[models]]\nplugin = "vgg16"\n')
    with pytest.raises(
        UnknownNameError, match=r"experiment\.toml: unknown dataset 'lfww'; did you mean 'lfw'"
    ):
        Experiment.from_toml(path)
    result = _run(str(path))
    assert result.exit_code == 2 and f"{path}: unknown dataset 'lfww'; did you mean 'lfw'" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('dataset = { path = "x" }', r'dataset must be a name \(dataset = "NAME"\) or a table'),
        ('dataset = { name = "lfw", root = "x" }', r"dataset: unknown key\(s\) 'root'; known: name, path"),
        (
            'benchmark = { name = "b", path = "x" }',
            r"benchmark: unknown key\(s\) 'path'; known: name, images",
        ),
        ("dataset = 3", "dataset must be a name"),
    ],
)
def test_malformed_keys_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "experiment.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=f"{path.name}: {message}"):
        Experiment.from_toml(path)


def test_missing_copy_from_a_file_says_how_to_fetch(tmp_path: Path) -> None:
    path = tmp_path / "experiment.toml"
    path.write_text('dataset = "lfw"\ndata_dir = "none"\n')
    with pytest.raises(ConfigError, match=r"no copy at .*none/lfw; fetch it with `facebench fetch lfw`"):
        Experiment.from_toml(path)
