"""Executors as a plugin kind: registered names, the experiment keys and flags, the local
executor behind the contract, and the message when Ray is not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from torch import nn

from facebench.cli import main
from facebench.engine import embed_images
from facebench.errors import ConfigError, UnknownNameError
from facebench.executors import EmbeddingJob, Executor, resolve_executor
from facebench.executors.local import LocalExecutor
from facebench.experiment import Experiment, experiment_from_flags
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing
from facebench.registry import get_registry
from facebench.store import EmbeddingStore

FLAGS = dict(
    models=(),
    tasks=(),
    pairs=None,
    images=None,
    layers=None,
    metric=None,
    device=None,
    batch_size=None,
    output=None,
    cache_dir=None,
    no_cache=False,
)


def test_the_core_registers_local_and_ray() -> None:
    registry = get_registry()
    assert {"local", "ray"} <= set(registry.names("executor"))
    assert registry.get("executor", "local").plugin == "facebench-core"
    assert isinstance(resolve_executor(None), LocalExecutor)
    assert isinstance(resolve_executor("local"), LocalExecutor)
    with pytest.raises(UnknownNameError, match="did you mean 'ray'"):
        resolve_executor("rya")


def test_experiment_file_and_flags_name_the_executor(tmp_path: Path) -> None:
    path = tmp_path / "experiment.toml"
    path.write_text(
        'executor = "ray"\nexecutor_options = { address = "auto", num_actors = 3 }\n'
        'data_path = "cpu"\nchannels_last = true\ntorch_compile = true\n'
        '[[models]]\nplugin = "vgg16"\n[[tasks]]\nplugin = "accuracy"\n'
    )
    experiment = Experiment.from_toml(path)
    assert (experiment.executor, experiment.executor_options, experiment.data_path) == (
        "ray",
        {"address": "auto", "num_actors": 3},
        "cpu",
    )
    assert experiment.channels_last is True
    assert experiment.torch_compile is True and experiment.to_dict()["torch_compile"] is True
    plain = tmp_path / "plain.toml"
    plain.write_text('[[models]]\nplugin = "vgg16"\n[[tasks]]\nplugin = "accuracy"\n')
    assert experiment_from_flags(str(plain), **FLAGS).torch_compile is False
    assert experiment_from_flags(str(plain), **{**FLAGS, "torch_compile": True}).torch_compile is True
    assert experiment.to_dict()["executor"] == "ray"
    bad = tmp_path / "bad.toml"
    bad.write_text('channels_last = "yes"\n[[models]]\nplugin = "vgg16"\n')
    with pytest.raises(ConfigError, match="channels_last: expected true or false"):
        Experiment.from_toml(bad)
    flagged = experiment_from_flags(str(path), **{**FLAGS, "executor": "local"})
    assert (flagged.executor, flagged.executor_options) == ("local", {})
    addressed = experiment_from_flags(
        None, **{**FLAGS, "models": ("vgg16",), "tasks": ("accuracy",), "ray_address": "ray://head:10001"}
    )
    assert (addressed.executor, addressed.executor_options) == ("ray", {"address": "ray://head:10001"})
    with pytest.raises(ConfigError, match="--ray-address is an option of the ray executor"):
        experiment_from_flags(str(path), **{**FLAGS, "executor": "local", "ray_address": "auto"})


class RecordingExecutor(Executor):
    """Writes zeros for every key, recording the jobs (a third executor, to test the contract)."""

    name = "recording"

    def __init__(self) -> None:
        self.jobs: list[EmbeddingJob] = []

    def embed(self, job: EmbeddingJob) -> None:
        self.jobs.append(job)
        for keys, _paths in job.batches():
            for table in job.tables.values():
                table.write(keys, np.zeros((len(keys), 2), dtype=np.float32))


class PixelMean(BaseModel):
    """The mean of each 8 x 8 image's pixels (no weights)."""

    def default_preprocessing(self) -> Preprocessing:
        return Preprocessing(resize=None, crop=None)

    def _build_model(self) -> nn.Module:
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_embed_images_hands_only_missing_unique_images_to_the_executor(tmp_path: Path) -> None:
    images = []
    for i in range(5):
        path = tmp_path / f"face{i}.png"
        Image.fromarray(np.full((8, 8, 3), i * 40, dtype=np.uint8)).save(path)
        images.append(path)
    (tmp_path / "copy.png").write_bytes(images[0].read_bytes())  # same bytes: embedded once
    model = PixelMean(device="cpu")
    executor = RecordingExecutor()
    with EmbeddingStore(tmp_path / "cache") as store:
        first = embed_images(
            model, [*images[:3], tmp_path / "copy.png"], store=store, batch_size=2, executor=executor
        )
        second = embed_images(model, images, store=store, batch_size=2, executor=executor, progress=False)
    assert [len(job.keys) for job in executor.jobs] == [3, 2]
    assert [len(keys) for keys, _ in executor.jobs[0].batches()] == [2, 1]
    assert executor.jobs[1].paths == [str(images[3]), str(images[4])]
    assert (first.computed, second.computed, second.cached) == (3, 2, 3)
    assert executor.jobs[0].total == 3 and executor.jobs[1].total == 5


def test_missing_ray_is_a_config_error_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r'pip install "facebench-core\[ray\]"'):
        get_registry().create("executor", "ray")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("img1,img2,same\n")
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--model",
            "vgg16",
            "--task",
            "accuracy",
            "--pairs",
            str(pairs),
            "--images",
            str(tmp_path),
            "--executor",
            "ray",
        ],
    )
    assert result.exit_code == 2, result.output
    assert 'pip install "facebench-core[ray]"' in result.output


def _write_chunks(folder: str, writer: int, chunks: int) -> None:
    store = EmbeddingStore(folder)
    table = store.table("model", "layer", "flatten")
    for chunk in range(chunks):
        keys = [f"{writer:04d}{chunk:04d}{row:024d}" for row in range(3)]
        table.write(keys, np.full((3, 4), writer * 1000 + chunk, dtype=np.float32))


def test_many_processes_write_one_table_at_once(tmp_path: Path) -> None:
    """What Ray actors do: every chunk of every writer is readable afterwards, none lost."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_chunks, args=(str(tmp_path), w, 15)) for w in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0
    table = EmbeddingStore(tmp_path).table("model", "layer", "flatten")
    assert len(table) == 4 * 15 * 3
    keys = [f"{w:04d}{c:04d}{r:024d}" for w in range(4) for c in range(15) for r in range(3)]
    table.verify(keys)
    expected = np.repeat([w * 1000 + c for w in range(4) for c in range(15)], 3)
    np.testing.assert_array_equal(table.read(keys)[:, 0], expected)
