"""Tasks that read embeddings (rsa, with an images table) and analyses (cka) run by the manager."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from rsatoolbox.inference import eval_fixed
from rsatoolbox.model import ModelFixed
from rsatoolbox.rdm import RDMs
from scipy.spatial.distance import pdist

from facebench.experiment import Experiment, experiment_from_flags
from facebench.manager import MultiModelTaskManager
from facebench.results import RESULTS_JSON_FILE
from facebench_tasks.accuracy import AccuracyTask
from facebench_tasks.cka import CKAAnalysis
from facebench_tasks.rsa import RSATask


@pytest.fixture(scope="module")
def rsa_inputs(stimuli, tmp_path_factory):
    """Six demo faces: three participants' ratings (long format) and an images table."""
    folder = tmp_path_factory.mktemp("rsa")
    names = [f"upright/{p.name}" for p in sorted((stimuli.images / "upright").glob("*.png"))][:6]
    assert len(names) == 6
    first, second = np.triu_indices(len(names), 1)
    rng = np.random.default_rng(0)
    truth = rng.random(first.size)
    rows = [
        pd.DataFrame(
            {
                "img1": np.asarray(names)[first],
                "img2": np.asarray(names)[second],
                "subject": f"s{s}",
                "distance": truth + rng.normal(scale=0.2, size=first.size),
            }
        )
        for s in range(3)
    ]
    pd.concat(rows).to_csv(folder / "ratings.csv", index=False)
    pd.DataFrame({"image": names, "identity": [n.split("_v")[0] for n in names]}).to_csv(
        folder / "faces.csv", index=False
    )
    pd.DataFrame({"image": names[:3]}).to_csv(folder / "three.csv", index=False)
    return folder, names


@pytest.fixture(scope="module")
def finished(stimuli, rsa_inputs, tmp_path_factory, tiny_net):
    folder, _ = rsa_inputs
    out = tmp_path_factory.mktemp("out")
    rsa = RSATask(
        name="RSA",
        pairs_file_path=folder / "ratings.csv",
        table_path=folder / "faces.csv",
        images_path=stimuli.images,
        subject_column="subject",
        n_bootstrap=20,
    )
    verification = AccuracyTask(
        name="Verification", pairs_file_path=stimuli.pairs["verification"], images_path=stimuli.images
    )
    analyses = [
        CKAAnalysis(),
        CKAAnalysis(name="cka-table", table_path=folder / "faces.csv", images_path=stimuli.images),
        CKAAnalysis(name="cka-three", table_path=folder / "three.csv", images_path=stimuli.images),
        CKAAnalysis(name="cka-stats", methods=["debiased", "rbf"], bootstrap=30, permutations=19),
    ]
    models = [tiny_net(name="tiny-a", seed=0), tiny_net(name="tiny-b", seed=1)]
    with MultiModelTaskManager(
        models=models,
        tasks=[rsa, verification],
        analyses=analyses,
        batch_size=64,
        cache_dir=None,
        num_workers=0,
        progress=False,
    ) as manager:
        failures = manager.run_all_tasks_all_models(export_path=out)
    return manager, failures, out


def test_rsa_scores_the_stored_embeddings_as_rsatoolbox_does(finished, rsa_inputs, stimuli) -> None:
    manager, failures, out = finished
    folder, names = rsa_inputs
    assert [(f.stage, f.analysis) for f in failures] == [
        ("analysis", "cka-three")
    ]  # 3 images: no debiased CKA
    performance = pd.read_csv(out / "performance" / "RSA.csv")
    assert list(performance.columns) == [
        "Model Name",
        "Layer Name",
        "Task Name",
        "RSA Score",
        "RSA Score CI Low",
        "RSA Score CI High",
        "Noise Ceiling Lower",
        "Noise Ceiling Upper",
        "Comparator",
        "Distance Metric",
    ]
    assert len(performance) == 4  # 2 models x 2 layers
    model = manager.models["tiny-a"]
    with torch.inference_mode():
        batch = torch.stack([model.preprocess_image(stimuli.images / n) for n in names])
        features = model.get_output(batch)["fc"].double().numpy()
    ratings = pd.read_csv(folder / "ratings.csv")
    subjects = np.stack([group["distance"].to_numpy() for _, group in ratings.groupby("subject")])
    data = RDMs(subjects)
    expected = eval_fixed([ModelFixed("m", RDMs(pdist(features, "cosine")[None]))], data, method="spearman")
    row = performance[(performance["Model Name"] == "tiny-a") & (performance["Layer Name"] == "fc")].iloc[0]
    assert row["RSA Score"] == pytest.approx(float(np.mean(expected.evaluations)), abs=1e-6)
    assert row["Noise Ceiling Lower"] == pytest.approx(expected.noise_ceiling[0], abs=1e-10)
    distances = pd.read_csv(out / "distances" / "tiny-a" / "fc" / "RSA.csv")
    assert len(distances) == 15 and {"human_dissimilarity", "model_computed_distance"} <= set(
        distances.columns
    )
    # the pair task alongside it still exports its pairs and metrics
    assert (out / "distances" / "tiny-a" / "fc" / "Verification.csv").is_file()
    assert (out / "performance" / "Verification.csv").is_file()
    plots = {p.name for p in (out / "plots" / "RSA").iterdir()}
    assert {"RSA_rdms_tiny-a.png", "RSA_mds_tiny-a.png", "RSA_RSA_Score_by_layer.png"} <= plots


def test_cka_runs_on_every_model_layer_after_every_model(finished, stimuli) -> None:
    manager, _, out = finished
    table = pd.read_csv(out / "analyses" / "cka.csv")
    assert len(table) == 4 * 4 * 2  # (2 models x 2 layers)^2 x 2 methods
    same = table[(table["Model A"] == table["Model B"]) & (table["Layer A"] == table["Layer B"])]
    np.testing.assert_allclose(same["CKA"], 1.0, atol=1e-9)
    # default images: every image of the run's tasks; with a table: the table's six
    assert manager.analyses["cka"].image_paths() == []
    assert len(pd.read_csv(out / "analyses" / "cka-table.csv")) == 32
    assert not (out / "analyses" / "cka-three.csv").exists()
    assert (out / "plots" / "analyses" / "cka" / "cka_linear.png").is_file()
    document = json.loads((out / RESULTS_JSON_FILE).read_text())
    assert any(f["analysis"] == "cka-three" for f in document["failures"])


def test_flags_give_tables_only_to_tasks_that_read_them(rsa_inputs, stimuli, monkeypatch) -> None:
    folder, _ = rsa_inputs
    monkeypatch.chdir(folder)
    experiment = experiment_from_flags(
        None,
        models=["vgg16:pretrained=false"],
        tasks=["rsa:subject_column=subject", "accuracy"],
        pairs="ratings.csv",
        images=str(stimuli.images),
        layers=None,
        metric=None,
        device=None,
        batch_size=None,
        output=None,
        cache_dir=None,
        no_cache=True,
        table="faces.csv",
        analyses=["cka:methods=[linear]"],
    )
    rsa, accuracy = experiment.tasks
    assert rsa.options["table_path"].resolve() == folder / "faces.csv"
    assert "table_path" not in accuracy.options
    accuracy.options["pairs_file_path"] = stimuli.pairs["verification"]
    tasks, _ = experiment.prepare()
    assert tasks[0].image_names() == list(pd.read_csv(folder / "faces.csv")["image"])
    assert experiment.analyses[0].plugin == "cka" and experiment.analyses[0].options == {
        "methods": ["linear"]
    }


def test_toml_tables_and_analyses_resolve_against_the_file(tmp_path) -> None:
    data = {
        "models": [{"plugin": "vgg16", "pretrained": False}],
        "tasks": [{"plugin": "rsa", "pairs": "ratings.csv", "table": "faces.csv", "images": "faces"}],
        "analyses": [
            {"plugin": "cka", "table": "faces.csv", "images": "faces", "options": {"methods": ["linear"]}}
        ],
    }
    experiment = Experiment.from_mapping(data, base_dir=tmp_path)
    assert experiment.tasks[0].options["table_path"] == str(tmp_path / "faces.csv")
    analysis = experiment.analyses[0]
    assert analysis.name == "cka"
    assert analysis.options == {
        "table_path": str(tmp_path / "faces.csv"),
        "images_path": tmp_path / "faces",
        "methods": ["linear"],
    }
    assert experiment.to_dict()["analyses"] == [{"plugin": "cka", "options": analysis.options}]


def test_cka_intervals_p_values_and_rbf_reach_the_run_folder(finished) -> None:
    _, _, out = finished
    table = pd.read_csv(out / "analyses" / "cka-stats.csv")
    assert list(table.columns)[-4:] == ["CKA", "CI low", "CI high", "p (permutation)"]
    assert list(table["Method"].unique()) == ["debiased linear", "rbf 0.5"]
    debiased = table[table["Method"] == "debiased linear"]
    assert (debiased["CI low"] <= debiased["CI high"]).all()
    assert table[table["Method"] == "rbf 0.5"]["CI low"].isna().all()  # intervals: debiased only
    assert table["p (permutation)"].between(1 / 20, 1.0).all()
    assert (out / "plots" / "analyses" / "cka-stats" / "cka-stats_rbf_0.5.png").is_file()
    document = json.loads((out / RESULTS_JSON_FILE).read_text())
    (described,) = [a for a in document["analyses"] if a["name"] == "cka-stats"]
    assert described["options"]["bootstrap"] == 30 and described["options"]["permutations"] == 19
