"""`facebench run --dataset`: the dataset's protocol as ordinary tasks, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from facebench.cli import main


def _run(*args: str) -> object:
    return CliRunner().invoke(main, ["run", "--quiet", "--no-cache", *args], catch_exceptions=False)


def test_run_dataset_lfw_with_vgg16(lfw_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"is not the published pairs.txt \(its SHA-256 differs\)"):
        result = _run(
            "--dataset",
            f"lfw:path={lfw_copy}",
            "--model",
            "vgg16:pretrained=false",
            "--layers",
            "features.4",
            "--output",
            str(out),
        )
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    (task,) = document["tasks"]
    assert task["name"] == "lfw" and task["pairs"] == 8
    assert task["options"]["fold_column"] == "fold" and task["options"]["label_column"] == "same"
    assert document["experiment"]["dataset"]["name"] == "lfw"
    assert document["experiment"]["dataset"]["root"] == str(lfw_copy)
    # the fixture's pairs.txt is not LFW's published one: warned about, and recorded
    assert document["experiment"]["dataset"]["files_verified"] == {"pairs.txt": False}
    # the AUC reported is sklearn's on the per-pair distances the run wrote (cosine: score 1 - d)
    (per_pair,) = [f for f in document["files"] if f.endswith(".csv") and "features.4" in f and "lfw" in f]
    distances = pd.read_csv(out / per_pair)
    values = {r["values"]["AUC"] for r in document["metrics"] if r["task"] == "lfw"}
    assert values == {roc_auc_score(distances["same"], 1 - distances["model_computed_distance"])}


@pytest.mark.filterwarnings("ignore:.*is not the published pairs.txt:UserWarning")
def test_dataset_composes_with_task(lfw_copy: Path, tmp_path: Path) -> None:
    from facebench.experiment import experiment_from_flags

    flags = dict(pairs=None, images=None, layers=None, metric="euclidean", device=None, batch_size=None)
    flags |= dict(output=str(tmp_path / "o"), cache_dir=None, no_cache=True)
    experiment = experiment_from_flags(
        None, ["vgg16"], ["accuracy:label_column=same,n_folds=2"], dataset=f"lfw:path={lfw_copy}", **flags
    )
    (task,) = experiment.tasks
    assert task.plugin == "accuracy" and task.options["n_folds"] == 2
    assert task.options["images_path"] == lfw_copy / "lfw"
    assert (
        pd.read_csv(task.options["pairs_file_path"])["img1"].iloc[0] == "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
    )
    assert task.options["distance_metric"] == "euclidean"


def test_missing_copy_says_how_to_fetch(tmp_path: Path) -> None:
    result = _run("--dataset", "lfw", "--data-dir", str(tmp_path / "none"), "--model", "vgg16")
    assert result.exit_code == 2
    assert f"no copy at {tmp_path / 'none' / 'lfw'}; fetch it with `facebench fetch lfw`" in result.output


def test_unfetchable_dataset_says_where_to_request(tmp_path: Path) -> None:
    result = _run("--dataset", "agedb-30", "--data-dir", str(tmp_path), "--model", "vgg16")
    assert result.exit_code == 2
    assert "request it at https://ibug.doc.ic.ac.uk/resources/agedb/" in result.output


def test_list_and_describe_datasets() -> None:
    listing = CliRunner().invoke(main, ["list", "datasets"])
    assert listing.exit_code == 0
    for name in ("lfw", "lfw-deepfunneled", "calfw", "cplfw", "cfp-fp", "agedb-30"):
        assert f"\n{name} " in listing.output
    described = json.loads(CliRunner().invoke(main, ["describe", "lfw", "--json"]).output)
    assert described["kind"] == "dataset" and described["fetchable"] is True
    assert [f["name"] for f in described["files"]] == ["pairs.txt", "lfw.tgz"]
    assert [o["name"] for o in described["options"]] == ["path"]
