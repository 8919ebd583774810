"""The ``probe`` and ``adaptation`` tasks run by the manager on a tiny model's embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facebench.manager import MultiModelTaskManager
from facebench_tasks.adaptation import AdaptationTask
from facebench_tasks.probe import ProbeTask


@pytest.fixture(scope="module")
def readouts(stimuli, tmp_path_factory, tiny_net):
    tmp_path = tmp_path_factory.mktemp("readouts")
    people = [identity.name for identity in stimuli.identities]
    table = pd.DataFrame(
        [(f"upright/{name}_v{view}.png", name) for name in people for view in range(3)],
        columns=["image", "identity"],
    )
    table.to_csv(tmp_path / "images.csv", index=False)
    pairs = pd.DataFrame(
        [
            (f"upright/{name}_v{a}.png", f"upright/{name}_v{b}.png", "train" if i < 3 else "test")
            for i, name in enumerate(people)
            for a, b in ((0, 1), (0, 2), (1, 2))
        ],
        columns=["img1", "img2", "split"],
    )
    pairs.to_csv(tmp_path / "matched.csv", index=False)
    tasks = [
        ProbeTask(
            name="Identity probe",
            table_path=tmp_path / "images.csv",
            images_path=stimuli.images,
            label_column="identity",
            n_folds=3,
            C=1.0,
        ),
        AdaptationTask(
            name="Adaptation",
            pairs_file_path=tmp_path / "matched.csv",
            images_path=stimuli.images,
            split_column="split",
            max_epochs=5,
            progress=False,
        ),
    ]
    with MultiModelTaskManager(
        models=[tiny_net(name="tiny")],
        tasks=tasks,
        batch_size=64,
        cache_dir=None,
        num_workers=0,
        progress=False,
    ) as manager:
        failures = manager.run_all_tasks_all_models(export_path=tmp_path / "out")
    return manager, failures, tmp_path / "out", table


def test_probe_and_adaptation_results_per_layer(readouts) -> None:
    _, failures, out, _ = readouts
    assert failures == []
    probe = pd.read_csv(out / "performance" / "Identity_probe.csv")
    assert list(probe["Layer Name"]) == ["conv", "fc"]
    assert (probe["Classes"] == 5).all() and (probe["Chance Balanced Accuracy"] == 0.2).all()
    assert probe["Accuracy"].between(0, 1).all()
    assert probe["Top-5 Accuracy"].isna().all(), "top-k needs more than five classes"
    adaptation = pd.read_csv(out / "performance" / "Adaptation.csv")
    assert (adaptation["Held-out Pairs"] == 6).all()
    for column in ("Top-1 img1->img2 Before", "Top-1 img2->img1 After", "MRR Mean After"):
        assert adaptation[column].between(0, 1).all()
    chance = readouts[0].tasks["Adaptation"].reference_band("Top-1 Mean After", adaptation)
    assert chance.low == chance.high == pytest.approx(1 / 6)


def test_probe_reads_the_same_embeddings_as_the_store(readouts, stimuli) -> None:
    """The probe's 'fc' accuracy equals a probe fitted on the model's own outputs."""
    manager, _, _, table = readouts
    model = manager.models["tiny"]
    features = np.stack(
        [
            model.get_output(model.preprocess_image(stimuli.images / image)[None])["fc"][0].numpy()
            for image in table["image"]
        ]
    )
    expected = manager.tasks["Identity probe"].score(features)
    got = manager.tasks_performance_dfs["Identity probe"].set_index("Layer Name").loc["fc"]
    assert got["Accuracy"] == pytest.approx(expected["Accuracy"], abs=1e-6)


def test_probe_plots_draw_the_chance_line_by_layer(readouts) -> None:
    manager, _, out, _ = readouts
    written = {path.name for path in (out / "plots" / "Identity_probe").iterdir()}
    assert "Identity_probe_Accuracy_by_layer.png" in written, sorted(written)
    task, performance = manager.tasks["Identity probe"], manager.tasks_performance_dfs["Identity probe"]
    chance = task.reference_band("Balanced Accuracy", performance)
    assert (chance.low, chance.high, chance.median, chance.label) == (0.2, 0.2, None, "Chance")
    assert task.reference_band("Macro F1", performance) is None


def test_probe_from_the_command_line_with_a_table(use_registry, readouts, stimuli) -> None:
    from click.testing import CliRunner

    from facebench.cli import main

    _, _, out, _ = readouts
    table = out.parent / "images.csv"
    result = CliRunner().invoke(
        main,
        [
            *("run", "--model", "tiny", "--task", "probe:label_column=identity,n_folds=3,C=0.5"),
            *("--table", str(table), "--images", str(stimuli.images), "--no-cache", "--quiet"),
            *("--output", str(out.parent / "cli")),
        ],
    )
    assert result.exit_code == 0, result.output
    performance = pd.read_csv(out.parent / "cli" / "performance" / "images.csv")
    assert list(performance["Layer Name"]) == ["conv", "fc"]
    assert (performance["Folds"] == "3 folds over images").all()
