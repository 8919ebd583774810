"""Bad settings and inputs end in one message before any model is built, never in a traceback:
worker and batch counts, photos one preprocessing brings to different sizes, a cache that cannot
be written, and a weights file that does not fit its network (checked on the meta device)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from facebench.cli import main
from facebench.errors import ConfigError, WeightsError
from facebench.experiment import Experiment
from facebench.manager import MultiModelTaskManager
from facebench.model import load_weights
from facebench_tasks.accuracy import AccuracyTask


def accuracy(stimuli) -> AccuracyTask:
    return AccuracyTask(
        name="verification", pairs_file_path=stimuli.pairs["verification"], images_path=stimuli.images
    )


def run(models, task, out: Path | None = None, **options) -> MultiModelTaskManager:
    settings = {"batch_size": 4, "cache_dir": None, "num_workers": 0, "progress": False, **options}
    with MultiModelTaskManager(models=models, tasks=[task], **settings) as manager:
        manager.run_all_tasks_all_models(export_path=out, plots=False)
    return manager


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": "abc"}, "batch_size must be an integer of at least 1, not 'abc'"),
        ({"batch_size": 0}, "batch_size must be an integer of at least 1, not 0"),
        ({"num_workers": "x"}, "num_workers must be an integer of at least 0, not 'x'"),
        ({"num_workers": 1.5}, "num_workers must be an integer of at least 0, not 1.5"),
        ({"num_workers": -1}, "num_workers must be an integer of at least 0, not -1"),
    ],
)
def test_counts_given_in_python_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        MultiModelTaskManager(cache_dir=None, **{"batch_size": 4, **options})
    assert MultiModelTaskManager(cache_dir=None, batch_size=np.int64(8), num_workers=0).batch_size == 8


def test_num_workers_that_is_not_a_number_in_toml_is_one_error(use_registry, stimuli, tmp_path):
    experiment = tmp_path / "experiment.toml"
    experiment.write_text(
        f'num_workers = "abc"\noutput = "{tmp_path / "out"}"\n[[models]]\nplugin = "tiny"\n'
        f'[[tasks]]\nplugin = "accuracy"\npairs = "{stimuli.pairs["verification"]}"\n'
        f'images = "{stimuli.images}"\n'
    )
    result = CliRunner().invoke(main, ["run", str(experiment), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "num_workers: expected a number of workers (0 or more), got 'abc'" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(ConfigError, match="num_workers"):
        Experiment.from_toml(experiment)


def test_photos_of_different_shapes_with_resize_n_and_no_crop_are_refused_up_front(
    stimuli, tiny_net, tmp_path
):
    images = Path(shutil.copytree(stimuli.images, tmp_path / "images"))
    task = AccuracyTask(
        name="verification", pairs_file_path=stimuli.pairs["verification"], images_path=images
    )
    wide = images / sorted(task.image_names())[0]
    Image.open(wide).convert("RGB").resize((48, 32)).save(wide)  # 3:2; the others are square
    with pytest.raises(ConfigError) as caught:
        run([tiny_net(name="tiny")], task, tmp_path / "out")
    message = str(caught.value)
    assert "model 'tiny': resize=32, crop=none gives the images more than one size" in message
    assert "32x48" in message and "32x32" in message and "set crop=N" in message
    assert tiny_net.built == 0
    manager = run([tiny_net(name="cropped", crop=32)], task)  # one size: it runs
    assert manager.status == "completed"


def test_a_cache_that_cannot_be_written_is_refused_up_front(stimuli, tiny_net, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    original = tempfile.mkdtemp

    def read_only_cache(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).is_relative_to(tmp_path / "cache"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return original(*args, dir=dir, **kwargs)

    cache.mkdir()
    monkeypatch.setattr("facebench.filesystem.tempfile.mkdtemp", read_only_cache)
    with pytest.raises(
        ConfigError, match=r"cannot write to the embedding cache .*cache: .*read-only.*--no-cache"
    ):
        run([tiny_net(name="tiny")], accuracy(stimuli), tmp_path / "out", cache_dir=cache)
    assert tiny_net.built == 0 and not (tmp_path / "out").exists()


def test_a_weights_file_that_does_not_fit_is_refused_before_any_model_runs(stimuli, tiny_net, tmp_path):
    class Loading(tiny_net):
        def _build_model(self):
            network = super()._build_model()
            load_weights(network, self.weights_path)
            return network

    torch.save({"conv.weight": torch.zeros(6, 3, 3, 3)}, tmp_path / "other.pth")
    first = tiny_net(name="first")
    with pytest.raises(WeightsError, match=r"does not fit .*conv\.weight"):
        run(
            [first, Loading(name="loaded", weights_path=tmp_path / "other.pth")],
            accuracy(stimuli),
            tmp_path / "out",
        )
    assert first.images_seen == 0 and not (tmp_path / "out").exists()
    torch.save(tiny_net(name="source", seed=3).model.state_dict(), tmp_path / "fits.pth")
    manager = run([Loading(name="loaded", weights_path=tmp_path / "fits.pth")], accuracy(stimuli))
    assert manager.status == "completed"


def test_checking_a_face_checkpoint_on_the_meta_device_prints_no_false_warning(tmp_path):
    from facebench_models.torchvision_family import TorchvisionModel

    source = TorchvisionModel(arch="resnet18", pretrained=False, device="cpu")
    torch.save(source.model.state_dict(), tmp_path / "r18.pth")
    model = TorchvisionModel(
        arch="resnet18", weights_path=tmp_path / "r18.pth", device="cpu", extract_layers=["layer1"]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.check_weights_before_building()
        model.check_layers_before_building()
        built = model.model
    assert not [w for w in caught if "no-op" in str(w.message)]
    for name, value in source.model.state_dict().items():
        assert torch.equal(built.state_dict()[name], value), name
