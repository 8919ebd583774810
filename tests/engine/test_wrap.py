"""facebench.wrap: an nn.Module in memory as a model, its weights in the cache identity."""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import facebench
from facebench.engine import embed_images
from facebench.errors import ConfigError
from facebench.manager import MultiModelTaskManager
from facebench.preprocessing import Preprocessing
from facebench.store import EmbeddingStore
from facebench.tiny_data import write_images
from facebench_tasks.accuracy import AccuracyTask

PIXELS = Preprocessing(resize=32, crop=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def network() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 4, 3, padding=1),
            relu=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(2),
            flat=nn.Flatten(),
            fc=nn.Linear(16, 5),
        )
    )


def test_wrapped_module_gives_its_own_outputs_and_a_changed_weight_is_recomputed(
    images: list[Path], tmp_path: Path
) -> None:
    module = network()
    model = facebench.wrap(module, preprocessing=PIXELS, name="mine", extract_layers=["fc"])
    store = EmbeddingStore(tmp_path / "cache")
    first = embed_images(model, images, store=store, num_workers=0, progress=False)
    batch = torch.stack([model.preprocess_image(path) for path in images])
    with torch.no_grad():
        expected = module(batch)
    torch.testing.assert_close(torch.from_numpy(first.vectors("fc", images)), expected)
    assert model.name == "mine" and first.computed == len(images)

    again = embed_images(model, images, store=store, num_workers=0, progress=False)
    assert again.cached == len(images) and again.computed == 0
    identity = model.identity
    with torch.no_grad():
        module.fc.bias.add_(1.0)  # changed in place, as an optimizer step does
    assert model.identity != identity
    changed = embed_images(model, images, store=store, num_workers=0, progress=False)
    assert changed.computed == len(images)
    torch.testing.assert_close(torch.from_numpy(changed.vectors("fc", images)), expected + 1.0)


def test_identity_follows_the_weights_not_the_object() -> None:
    one, two = (
        facebench.wrap(network(), preprocessing=PIXELS),
        facebench.wrap(network(), preprocessing=PIXELS),
    )
    assert one.identity == two.identity  # same class, architecture and weights
    other = network()
    with torch.no_grad():
        other.conv.weight[0, 0, 0, 0] += 1e-3
    assert facebench.wrap(other, preprocessing=PIXELS).identity != one.identity
    assert facebench.wrap(network(), preprocessing={"resize": 16}).identity != one.identity
    assert one.weights_fingerprint().startswith("state_dict:sha256:")


def test_untrained_control_of_a_wrapped_module_leaves_the_module_alone() -> None:
    module = network()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    untrained = facebench.wrap(module, preprocessing=PIXELS, pretrained=False, seed=5)
    built = untrained.model
    assert built is not module
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert not torch.equal(built.conv.weight, module.conv.weight)
    assert untrained.identity != facebench.wrap(module, preprocessing=PIXELS).identity


def test_a_bare_module_is_refused_with_the_way_to_wrap_it() -> None:
    with pytest.raises(ConfigError, match=r"Sequential is a torch.nn.Module.*facebench.wrap\(module"):
        MultiModelTaskManager(models=[network()], cache_dir=None)


def test_manager_runs_a_wrapped_module_and_logs_what_came_from_the_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = tmp_path / "images"
    names = write_images(images, identities=3, per_identity=2, size=24)
    pairs = tmp_path / "pairs.csv"
    rows = [
        (a, b, int(a.split("/")[0] == b.split("/")[0])) for i, a in enumerate(names) for b in names[i + 1 :]
    ]
    pairs.write_text("img1,img2,truth\n" + "".join(f"{a},{b},{s}\n" for a, b, s in rows))

    def run() -> None:
        task = AccuracyTask(name="verify", pairs_file_path=pairs, images_path=images, n_folds=3)
        model = facebench.wrap(network(), preprocessing=PIXELS, name="mine", extract_layers=["fc"])
        with MultiModelTaskManager(
            models=model, tasks=task, cache_dir=tmp_path / "cache", num_workers=0, progress=False
        ) as manager:
            assert not manager.run_all_tasks_all_models()
            assert set(manager.tasks_performance_dfs["verify"]["Model Name"]) == {"mine"}

    with caplog.at_level(logging.INFO, logger="facebench"):
        run()
        run()
    messages = [r.getMessage() for r in caplog.records if "image(s)" in r.getMessage()]
    assert messages == [
        f"model mine: embedded {len(names)} image(s), 0 from cache",
        f"model mine: {len(names)} image(s) from cache",
    ]
