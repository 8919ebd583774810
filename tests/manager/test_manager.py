"""The manager end to end on the demo stimuli with a tiny model: numbers, files, failures."""

from __future__ import annotations

import json
import re
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cosine
from sklearn.metrics import roc_auc_score

import facebench
from facebench.analysis import BaseAnalysis
from facebench.errors import ConfigError, UnknownNameError
from facebench.manager import Failure, MultiModelTaskManager
from facebench.results import RESULTS_JSON_FILE, UNIFIED_SUMMARY_FILE
from facebench_tasks.accuracy import AccuracyTask
from facebench_tasks.conditioned_average import ConditionedAverageDistances
from facebench_tasks.correlation import CorrelationTask


def demo_tasks(stimuli) -> list:
    images = stimuli.images
    return [
        AccuracyTask(name="Verification", pairs_file_path=stimuli.pairs["verification"], images_path=images),
        CorrelationTask(
            name="Similarity", pairs_file_path=stimuli.pairs["similarity"], images_path=images, n_bootstrap=50
        ),
        ConditionedAverageDistances(
            name="Conditions", pairs_file_path=stimuli.pairs["conditions"], images_path=images
        ),
    ]


def new_manager(models, tasks) -> MultiModelTaskManager:
    return MultiModelTaskManager(
        models=models, tasks=tasks, batch_size=64, cache_dir=None, num_workers=0, progress=False
    )


@pytest.fixture(scope="module")
def finished_run(stimuli, tmp_path_factory, tiny_net):
    tmp_path = tmp_path_factory.mktemp("finished")
    models = [tiny_net(name="tiny-a", seed=0), tiny_net(name="tiny-b", seed=1, reduction="mean")]
    with new_manager(models, demo_tasks(stimuli)) as manager:
        failures = manager.run_all_tasks_all_models(export_path=tmp_path / "out")
    return manager, failures, tmp_path / "out"


def test_distances_and_auc_match_a_plain_computation(finished_run, stimuli):
    manager, failures, out = finished_run
    assert failures == []
    model = manager.models["tiny-a"]
    distances = pd.read_csv(out / "distances" / "tiny-a" / "fc" / "Verification.csv")
    task = manager.tasks["Verification"]
    assert len(distances) == len(task.pairs_df)
    for row in distances.head(5).itertuples():
        a = model.get_output(model.preprocess_image(stimuli.images / row.img1)[None])["fc"][0]
        b = model.get_output(model.preprocess_image(stimuli.images / row.img2)[None])["fc"][0]
        expected = cosine(a.double().numpy(), b.double().numpy())
        assert row.model_computed_distance == pytest.approx(expected, abs=1e-6)
    expected_auc = roc_auc_score(distances["truth"], 1 - distances["model_computed_distance"])
    summary = pd.read_csv(out / UNIFIED_SUMMARY_FILE)
    row = summary[(summary["Model Name"] == "tiny-a") & (summary["Layer Name"] == "fc")].iloc[0]
    assert row["Verification: AUC"] == pytest.approx(expected_auc)
    # the synthetic identities are clearly separable even by a random tiny network
    assert expected_auc > 0.75


def test_unified_summary_has_a_row_per_model_layer_and_condition_columns(finished_run):
    manager, _, out = finished_run
    summary = pd.read_csv(out / UNIFIED_SUMMARY_FILE)
    assert sorted(zip(summary["Model Name"], summary["Layer Name"], strict=True)) == [
        ("tiny-a", "conv"),
        ("tiny-a", "fc"),
        ("tiny-b", "conv"),
        ("tiny-b", "fc"),
    ]
    conditions = manager.tasks_performance_dfs["Conditions"]
    for condition in conditions["Condition"].unique():
        column = f"Conditions - {condition}: Mean Value"
        expected = conditions[(conditions["Condition"] == condition) & (conditions["Model Name"] == "tiny-b")]
        got = summary[summary["Model Name"] == "tiny-b"].set_index("Layer Name")[column]
        assert got[expected["Layer Name"]].to_numpy() == pytest.approx(expected["Mean Value"].to_numpy())
    assert "Similarity: Correlation Score" in summary.columns


def test_output_folder_layout(finished_run):
    _, _, out = finished_run
    for model in ("tiny-a", "tiny-b"):
        for layer in ("conv", "fc"):
            for task in ("Verification", "Similarity", "Conditions"):
                assert (out / "distances" / model / layer / f"{task}.csv").is_file()
    for task in ("Verification", "Similarity", "Conditions"):
        table = pd.read_csv(out / "performance" / f"{task}.csv")
        assert set(table["Model Name"]) == {"tiny-a", "tiny-b"}
        pngs = list((out / "plots" / task).glob("*.png"))
        assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
        assert len(list((out / "plots" / task).glob("*.svg"))) == len(pngs)
    assert list((out / "plots" / "Similarity").glob("*scatter*.png"))
    assert list((out / "plots" / "Verification").glob("*by_layer.png"))
    assert not list(out.rglob("*.tmp"))


def test_each_unique_image_is_embedded_once_per_model(stimuli, tiny_net):
    model = tiny_net(name="tiny")
    tasks = demo_tasks(stimuli)
    unique = set()
    for task in tasks:
        for paths in task.image_paths():
            unique.update(p.read_bytes() for p in paths)
    with new_manager([model], tasks) as manager:
        manager.run_all_tasks_with_model("tiny")
    assert model.images_seen == len(unique)


def test_results_json_schema(finished_run):
    manager, _, out = finished_run
    document = json.loads((out / RESULTS_JSON_FILE).read_text())
    for key in (
        "schema_version",
        "facebench_version",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "command_line",
        "environment",
        "plugins",
        "plugins_used",
        "settings",
        "models",
        "tasks",
        "metrics",
        "failures",
        "files",
    ):
        assert key in document, key
    assert document["facebench_version"] == facebench.__version__
    assert document["status"] == "completed"
    assert document["plugins_used"]["facebench-tasks"] == version("facebench-tasks")
    assert document["plugins_used"]["facebench-core"] == version("facebench-core")
    assert document["environment"]["torch"] == version("torch")
    started = datetime.fromisoformat(document["started_at"])
    finished = datetime.fromisoformat(document["finished_at"])
    assert started <= finished
    assert document["duration_seconds"] == pytest.approx((finished - started).total_seconds(), abs=0.01)
    models = {m["name"]: m for m in document["models"]}
    assert models["tiny-a"]["identity"] == manager.models["tiny-a"].identity
    assert models["tiny-b"]["weights_fingerprint"] == "random:seed=1"
    assert models["tiny-b"]["reductions"] == {"conv": "mean", "fc": "mean"}
    assert document["settings"]["seeds"] == {"tiny-a": 0, "tiny-b": 1}
    assert document["settings"]["devices"] == ["cpu"]
    tasks = {t["name"]: t for t in document["tasks"]}
    assert tasks["Similarity"]["options"]["n_bootstrap"] == 50
    assert tasks["Verification"]["plugin"]["registered_name"] == "accuracy"
    rows = sum(len(frame) for frame in manager.tasks_performance_dfs.values())
    assert len(document["metrics"]) == rows
    auc = next(
        m["values"]["AUC"]
        for m in document["metrics"]
        if m["task"] == "Verification" and m["model"] == "tiny-a" and m["layer"] == "conv"
    )
    table = manager.tasks_performance_dfs["Verification"]
    expected = table[(table["Model Name"] == "tiny-a") & (table["Layer Name"] == "conv")]["AUC"].item()
    assert auc == pytest.approx(expected)
    assert "models_unified_results.csv" in document["files"]
    assert all((out / name).is_file() for name in document["files"])


def test_a_failing_task_keeps_the_other_results(stimuli, tmp_path, tiny_net, exploding_task):
    exploding = exploding_task(
        name="Exploding", pairs_file_path=stimuli.pairs["similarity"], images_path=stimuli.images
    )
    tasks = [*demo_tasks(stimuli)[:2], exploding]
    with new_manager([tiny_net(name="tiny")], tasks) as manager:
        failures = manager.run_all_tasks_all_models(export_path=tmp_path)
    assert [(f.model, f.task, f.stage) for f in failures] == [("tiny", "Exploding", "task")]
    assert "boom" in failures[0].error
    assert set(manager.tasks_performance_dfs) == {"Verification", "Similarity"}
    document = json.loads((tmp_path / RESULTS_JSON_FILE).read_text())
    assert document["status"] == "completed with failures"
    assert document["failures"][0]["task"] == "Exploding"
    assert "RuntimeError" in document["failures"][0]["traceback"]
    assert (tmp_path / "performance" / "Verification.csv").is_file()
    assert "Exploding" in manager.failure_report()


def test_a_failing_model_keeps_the_other_models(stimuli, tmp_path, tiny_net, monkeypatch):
    good = tiny_net(name="good")
    bad = tiny_net(name="bad")

    def out_of_memory(tensor):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(bad, "_forward", out_of_memory)  # an unknown layer stops the run up front now
    with new_manager([bad, good], demo_tasks(stimuli)[:1]) as manager:
        failures = manager.run_all_tasks_all_models(export_path=tmp_path)
    assert [(f.model, f.stage) for f in failures] == [("bad", "embed")]
    assert "out of memory" in failures[0].error
    assert set(manager.tasks_performance_dfs["Verification"]["Model Name"]) == {"good"}


def test_an_interrupted_run_exports_what_it_finished(stimuli, tmp_path, monkeypatch, tiny_net):
    first, second = tiny_net(name="first"), tiny_net(name="second", seed=1)

    def interrupt(tensor):
        raise KeyboardInterrupt

    monkeypatch.setattr(second, "_forward", interrupt)
    with new_manager([first, second], demo_tasks(stimuli)[:1]) as manager, pytest.raises(KeyboardInterrupt):
        manager.run_all_tasks_all_models(export_path=tmp_path)
    document = json.loads((tmp_path / RESULTS_JSON_FILE).read_text())
    assert document["status"] == "interrupted"
    assert {m["model"] for m in document["metrics"]} == {"first"}
    assert (tmp_path / "distances" / "first" / "fc" / "Verification.csv").is_file()
    assert not list(tmp_path.rglob("*.tmp"))


def test_duplicate_names_are_an_error(stimuli, tiny_net):
    with pytest.raises(ConfigError, match="two models are named 'same'"):
        new_manager([tiny_net(name="same"), tiny_net(name="same")], [])
    tasks = demo_tasks(stimuli)[:1]
    manager = new_manager([], tasks)
    with pytest.raises(ConfigError, match="two tasks are named 'Verification'"):
        manager.add_tasks(demo_tasks(stimuli)[:1])


def test_run_task_with_unknown_names_lists_the_known_ones(stimuli, tiny_net):
    manager = new_manager([tiny_net(name="tiny")], demo_tasks(stimuli)[:1])
    with pytest.raises(UnknownNameError, match=r"Known .*tiny"):
        manager.run_task("tiny2", "Verification")
    performance = manager.run_task("tiny", "Verification")
    assert list(performance["Layer Name"]) == ["conv", "fc"]
    assert np.isfinite(performance["AUC"]).all()
    assert set(manager.model_task_distances_dfs["tiny"]) == {"Verification"}


def test_distances_for_task_stacks_models(finished_run):
    manager, _, _ = finished_run
    frame = manager.distances_for_task("Similarity")
    assert set(frame["Model Name"]) == {"tiny-a", "tiny-b"}
    assert len(frame) == 2 * 2 * len(manager.tasks["Similarity"].pairs_df)


def documented_keys(section: str) -> set[str]:
    """The keys listed in the table under ``### <section>`` of docs/results.md."""
    text = (Path(__file__).parents[2] / "docs" / "results.md").read_text()
    table = text.split(f"### {section}\n", 1)[1].split("\n### ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.MULTILINE))


def test_the_results_json_reference_lists_every_key(finished_run):
    _, _, out = finished_run
    document = json.loads((out / RESULTS_JSON_FILE).read_text())
    assert documented_keys("Top-level keys") == set(document)
    assert documented_keys("`settings`") == set(document["settings"])
    assert documented_keys("`models[]`") == set().union(*document["models"])
    assert documented_keys("`tasks[]`") == set().union(*document["tasks"])
    assert documented_keys("`metrics[]`") == set().union(*document["metrics"])
    assert documented_keys("`failures[]`") == set(Failure.__dataclass_fields__)
    # results.json adds the providing plugin to what an analysis describes
    assert documented_keys("`analyses[]`") == {*NoAnalysis().describe(), "plugin"}


class NoAnalysis(BaseAnalysis):
    """The smallest analysis: what any analysis records in results.json."""

    def run(self, views):  # pragma: no cover - never run
        raise NotImplementedError
