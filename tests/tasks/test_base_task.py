"""BaseTask checks its pairs file and images up front, and describes itself."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from facebench.errors import ConfigError, DataError, UnknownNameError
from facebench.registry import get_registry
from facebench.task import BaseTask


class MeanDistance(BaseTask):
    """The smallest possible task: the mean distance."""

    plot_columns = ("Mean Value",)

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        return self.result_row({"Mean Value": float(self.pair_distances(pairs_distances_df).mean())})


def make_pairs(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame({"img1": [f"a{i}.png" for i in range(n)], "img2": [f"b{i}.png" for i in range(n)]})


def test_image_paths_in_pairs_order_inside_images_folder(fixtures: Path, images_for) -> None:
    pairs_file = fixtures / "lfw_pairs_head.txt"
    images = images_for(pairs_file)
    task = MeanDistance(pairs_file_path=pairs_file, images_path=images)
    first, second = task.image_paths()
    assert len(first) == len(second) == 40
    assert first[0] == images.absolute() / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    assert all(p.is_file() for p in first + second)
    assert task.name == "lfw_pairs_head"


def test_missing_images_reports_first_few_and_how_many(write_pairs) -> None:
    pairs_file, images = write_pairs(make_pairs(10))
    for i in range(8):
        (images / f"b{i}.png").unlink()
    with pytest.raises(DataError) as info:
        MeanDistance(pairs_file_path=pairs_file, images_path=images)
    message = str(info.value)
    assert "8 of 20 images" in message
    assert "'b0.png', 'b1.png', 'b2.png', 'b3.png', 'b4.png' and 3 more" in message
    assert "pairs.csv" in message


@pytest.mark.parametrize("escaping", ["../outside.png", "sub/../../outside.png", "/etc/hostname"])
def test_image_paths_escaping_the_images_folder_are_rejected(write_pairs, escaping: str) -> None:
    pairs_file, images = write_pairs(make_pairs(2))
    (images.parent / "outside.png").write_bytes(b"")  # exists, but outside the images folder
    frame = make_pairs(2)
    frame.loc[1, "img2"] = escaping
    frame.to_csv(pairs_file, index=False)
    with pytest.raises(DataError, match=rf"stay inside the images folder.*{escaping!r}"):
        MeanDistance(pairs_file_path=pairs_file, images_path=images)


def test_dot_dot_that_stays_inside_is_allowed(write_pairs) -> None:
    pairs_file, images = write_pairs(make_pairs(2))
    (images / "sub").mkdir()
    frame = make_pairs(2)
    frame.loc[0, "img1"] = "sub/../a0.png"
    frame.to_csv(pairs_file, index=False)
    assert MeanDistance(pairs_file_path=pairs_file, images_path=images).image_paths()[0][0].is_file()


def test_missing_images_folder_and_missing_arguments(write_pairs, tmp_path: Path) -> None:
    pairs_file, _ = write_pairs(make_pairs(2))
    with pytest.raises(DataError, match=r"images folder .*nowhere.* does not exist"):
        MeanDistance(pairs_file_path=pairs_file, images_path=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="pairs_file_path"):
        MeanDistance(images_path=tmp_path)


def test_empty_image_cell_is_reported(write_pairs) -> None:
    pairs_file, images = write_pairs(make_pairs(3))
    pairs_file.write_text("img1,img2\na0.png,b0.png\na1.png,\n")
    with pytest.raises(DataError, match=r"'img2' is empty for pair 2"):
        MeanDistance(pairs_file_path=pairs_file, images_path=images)


def test_metric_by_name_or_callable(write_pairs) -> None:
    pairs_file, images = write_pairs(make_pairs(2))
    assert MeanDistance(pairs_file_path=pairs_file, images_path=images).metric.bounded
    euclidean = MeanDistance(pairs_file_path=pairs_file, images_path=images, distance_metric="euclidean")
    assert euclidean.metric.name == "euclidean" and not euclidean.metric.bounded

    def chebyshev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().amax(dim=1)

    custom = MeanDistance(pairs_file_path=pairs_file, images_path=images, distance_metric=chebyshev)
    assert custom.metric.name == "chebyshev" and not custom.metric.bounded
    with pytest.raises(UnknownNameError, match="did you mean 'cosine'"):
        MeanDistance(pairs_file_path=pairs_file, images_path=images, distance_metric="cosin")


def test_non_finite_distances_are_an_error(write_pairs) -> None:
    pairs_file, images = write_pairs(make_pairs(3))
    task = MeanDistance(pairs_file_path=pairs_file, images_path=images)
    with pytest.raises(DataError, match=r"1 pair distances are not finite.*pair 2"):
        task.compute_task_performance(task.pairs_df.assign(model_computed_distance=[0.1, float("nan"), 0.2]))
    with pytest.raises(DataError, match="no column 'model_computed_distance'"):
        task.compute_task_performance(task.pairs_df)


def test_describe_is_json_ready(write_pairs) -> None:
    pairs = make_pairs(4).assign(condition=["x", "y", "x", "y"])
    pairs_file, images = write_pairs(pairs)
    task_class = get_registry().get("task", "conditioned-average-distances").spec.load()
    task = task_class(name="views", pairs_file_path=pairs_file, images_path=images, normalize=False)
    described = json.loads(json.dumps(task.describe()))
    assert described["name"] == "views"
    assert described["class"] == "facebench_tasks.conditioned_average.ConditionedAverageDistances"
    assert described["metric"] == "cosine" and described["pairs"] == 4
    assert described["options"] == {
        "condition_column": "condition",
        "normalize": "none",
        "cluster_column": None,
        "n_bootstrap": 1000,
        "confidence": 0.95,
        "seed": 0,
    }


def test_unknown_task_option_lists_accepted_ones(write_pairs) -> None:
    pairs_file, images = write_pairs(make_pairs(2).assign(truth=[0, 1]))
    with pytest.raises(ConfigError, match=r"Accepted options:.*label_column"):
        get_registry().create(
            "task", "accuracy", pairs_file_path=pairs_file, images_path=images, label="same"
        )


def test_plot_writes_bars_per_model_and_layer(write_pairs, tmp_path: Path) -> None:
    pairs_file, images = write_pairs(make_pairs(2))
    task = MeanDistance(name="mean distance", pairs_file_path=pairs_file, images_path=images)
    performances = pd.DataFrame(
        {"Model Name": ["m1", "m1", "m2"], "Layer Name": ["l1", "l2", "l1"], "Mean Value": [0.1, 0.2, 0.3]}
    )
    written = task.plot(tmp_path / "plots", performances)
    assert sorted(p.suffix for p in written) == [".png", ".svg"]
    assert all(p.stat().st_size > 0 for p in written)
    assert "mean_distance" in written[0].name
