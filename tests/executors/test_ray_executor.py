"""The Ray executor on a local Ray (2 CPUs): same results as the local executor, resume after
an interruption, a failing actor fails the model with a clear message."""

from __future__ import annotations

import filecmp
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from facebench.demo import DemoStimuli, demo_experiment_toml, write_stimuli
from facebench.engine import embed_images
from facebench.errors import DataError, ExecutorError
from facebench.experiment import Experiment, run_experiment
from facebench.preprocessing import Preprocessing
from facebench.registry import Entry, ModelSpec, Registry, get_registry
from facebench.store import EmbeddingStore
from facebench.testing import TinyConvNet

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'facebench-core[ray]')")

from facebench.executors.ray import RayExecutor  # noqa: E402


class SmallNet(TinyConvNet):
    """facebench.testing's tiny network, cropped and normalised as ImageNet. ``stop_marker``:
    while that file exists, the forward pass after ``stop_after`` images in one actor kills its
    process (a crash)."""

    default_reduction = "mean"

    def __init__(self, stop_marker: str = "", stop_after: int = 0, bad_marker: str = "", **options) -> None:
        options.setdefault("device", "cpu")
        super().__init__(**options)
        self.stop_marker = stop_marker
        self.stop_after = stop_after
        self.bad_marker = bad_marker
        self.images_seen = 0

    non_output_options = frozenset({"stop_marker", "stop_after", "bad_marker"})

    def default_preprocessing(self) -> Preprocessing:
        return Preprocessing(resize=32, crop=32)

    def _forward(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.bad_marker and Path(self.bad_marker).exists():
            raise RuntimeError("boom: this network refuses every batch")
        if self.stop_marker and Path(self.stop_marker).exists() and self.images_seen >= self.stop_after:
            import os

            os._exit(1)  # the actor's process dies, as under kill -9
        self.images_seen += tensor.shape[0]
        return self.model(tensor)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (starting Ray takes seconds)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # actors cannot import tests
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory: pytest.TempPathFactory) -> DemoStimuli:
    return write_stimuli(tmp_path_factory.mktemp("stimuli"), identities=5, views=3)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    base = get_registry()
    fresh = Registry(plugins=base.plugins)
    for kind in ("task", "metric", "executor"):
        for entry in base.entries(kind):
            fresh.add(entry)
    fresh.add(Entry("model", ModelSpec("small", SmallNet, "test network"), "facebench-tests", "0"))
    monkeypatch.setattr("facebench.experiment.get_registry", lambda: fresh)
    return fresh


def experiment_file(folder: Path, stimuli: DemoStimuli, extra: str) -> Path:
    text = demo_experiment_toml("small", stimuli=str(stimuli.root), output="results", batch_size=8)
    path = folder / "experiment.toml"
    path.write_text(
        text.replace("cache = false", f'cache_dir = "cache"\nnum_workers = 0\n{extra}'), encoding="utf-8"
    )
    return path


def test_ray_results_equal_local_results_file_for_file(
    local_ray, registry: Registry, stimuli: DemoStimuli, tmp_path: Path
) -> None:
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    local_dir.mkdir()
    ray_dir.mkdir()
    local = run_experiment(
        Experiment.from_toml(experiment_file(local_dir, stimuli, "")), progress=False, print_log=False
    )
    remote = run_experiment(
        Experiment.from_toml(
            experiment_file(ray_dir, stimuli, 'executor = "ray"\nexecutor_options = { num_actors = 2 }')
        ),
        progress=False,
        print_log=False,
    )
    assert not local.failures and not remote.failures, (local.failure_report(), remote.failure_report())
    assert remote.executor.name == "ray" and local.executor.name == "local"

    local_files = sorted(p.relative_to(local_dir / "results") for p in (local_dir / "results").rglob("*.csv"))
    ray_files = sorted(p.relative_to(ray_dir / "results") for p in (ray_dir / "results").rglob("*.csv"))
    assert local_files == ray_files and len(local_files) >= 5
    for relative in local_files:
        pd.testing.assert_frame_equal(
            pd.read_csv(local_dir / "results" / relative), pd.read_csv(ray_dir / "results" / relative)
        )
        assert filecmp.cmp(local_dir / "results" / relative, ray_dir / "results" / relative, shallow=False)
    local_json = json.loads((local_dir / "results" / "results.json").read_text())
    ray_json = json.loads((ray_dir / "results" / "results.json").read_text())
    assert local_json["metrics"] == ray_json["metrics"]
    assert ray_json["settings"]["executor"]["name"] == "ray"
    # the Ray run wrote the same number of rows into its own store, in chunks from the actors
    local_store = EmbeddingStore(local_dir / "cache")
    ray_store = EmbeddingStore(ray_dir / "cache")
    model = registry.create("model", "small")
    for layer in ("conv", "fc"):
        assert len(local_store.table(model.identity, layer, "mean")) == len(
            ray_store.table(model.identity, layer, "mean")
        )


def test_interrupted_ray_run_resumes_from_the_store(local_ray, stimuli: DemoStimuli, tmp_path: Path) -> None:
    marker = tmp_path / "crash"
    marker.touch()
    paths = sorted(stimuli.images.rglob("*.png"))
    store = EmbeddingStore(tmp_path / "cache")
    executor = RayExecutor(num_actors=1)
    crashing = SmallNet(stop_marker=str(marker), stop_after=8)
    with pytest.raises(ExecutorError, match="failed on the Ray executor"):
        embed_images(crashing, paths, store=store, batch_size=4, progress=False, executor=executor)
    table = store.table(crashing.identity, "fc", "mean")
    table.refresh()
    kept = len(table)
    assert 0 < kept < len(paths)  # whole chunks of the batches before the crash

    marker.unlink()
    resumed = embed_images(SmallNet(), paths, store=store, batch_size=4, progress=False, executor=executor)
    assert resumed.cached == kept and resumed.computed == len(paths) - kept
    reference = embed_images(SmallNet(), paths, store=EmbeddingStore(None), batch_size=4, progress=False)
    for layer in ("conv", "fc"):
        assert (resumed.vectors(layer, paths) == reference.vectors(layer, paths)).all()


def test_failing_actor_fails_the_model_with_the_cause(
    local_ray, stimuli: DemoStimuli, tmp_path: Path
) -> None:
    marker = tmp_path / "bad"
    marker.touch()
    paths = sorted(stimuli.images.rglob("*.png"))[:4]
    with pytest.raises(ExecutorError, match=r"model 'SmallNet' failed on the Ray executor: .*boom"):
        embed_images(
            SmallNet(bad_marker=str(marker)),
            paths,
            store=EmbeddingStore(None),
            batch_size=2,
            progress=False,
            executor=RayExecutor(num_actors=1),
        )
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"broken\.png"):
        embed_images(
            SmallNet(),
            [*paths, tmp_path / "broken.png"],
            store=EmbeddingStore(None),
            batch_size=2,
            progress=False,
            executor=RayExecutor(num_actors=1),
        )


def test_rows_the_driver_cannot_see_fail_with_the_shared_folder_message(tmp_path: Path) -> None:
    from facebench.executors import EmbeddingJob

    store = EmbeddingStore(tmp_path / "cache")
    model = SmallNet()
    tables = {layer: store.table(model.identity, layer, "mean") for layer in model.output_layers}
    job = EmbeddingJob(model, ["a" * 32], ["x.png"], store, model.identity, tables)
    with pytest.raises(ExecutorError, match="cache_dir must be a folder every node shares"):
        RayExecutor._check_written(job)
