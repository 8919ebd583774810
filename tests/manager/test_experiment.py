"""Experiment files and ``facebench run``: checks before building, paths, flags, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torchvision import transforms

from facebench.cli import main
from facebench.errors import ConfigError, DataError, UnknownNameError
from facebench.experiment import Experiment, run_experiment

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_a_demo_experiment_file_runs_every_task(use_registry, stimuli, tmp_path, demo_toml):
    experiment = Experiment.from_toml(demo_toml(tmp_path, stimuli))
    assert experiment.output == tmp_path / "results"
    manager = run_experiment(experiment, progress=False, print_log=False)
    assert manager.failures == []
    summary = pd.read_csv(tmp_path / "results" / "models_unified_results.csv")
    for column in (
        "Verification (upright): AUC",
        "Verification (inverted): AUC",
        "Similarity: Correlation Score",
        "Same vs different identity - same identity: Mean Value",
        "Thatcher Effect: Relative Difference",
    ):
        assert column in summary.columns
        assert summary[column].notna().all()
    document = json.loads((tmp_path / "results" / "results.json").read_text())
    assert document["experiment"]["source"] == str(tmp_path / "experiment.toml")
    assert document["models"][0]["plugin"] == {
        "registered_name": "tiny",
        "plugin": "facebench-tests",
        "plugin_version": "0",
    }
    assert document["plugins_used"]["facebench-tests"] == "0"


def test_relative_paths_resolve_against_the_file(use_registry, stimuli, tmp_path):
    folder = tmp_path / "exp"
    shutil.copytree(stimuli.root, folder / "stimuli")
    (folder / "experiment.toml").write_text(
        'output = "out"\ncache_dir = "cache"\n'
        '[[models]]\nplugin = "tiny"\nlayers = ["fc"]\nweights_path = "w.pth"\n'
        '[[tasks]]\nplugin = "accuracy"\npairs = "stimuli/verification.csv"\nimages = "stimuli/images"\n'
    )
    experiment = Experiment.from_toml(folder / "experiment.toml")
    assert experiment.output == folder / "out"
    assert experiment.cache_dir == folder / "cache"
    assert experiment.models[0].options == {"extract_layers": ["fc"], "weights_path": str(folder / "w.pth")}
    assert experiment.tasks[0].options["pairs_file_path"] == folder / "stimuli" / "verification.csv"
    assert experiment.tasks[0].name == "verification"


@pytest.mark.parametrize(
    ("model_table", "task_table", "error", "message"),
    [
        ('plugin = "tinny"', "", UnknownNameError, "did you mean 'tiny'"),
        ('plugin = "tiny"\nwidth = 3', "", ConfigError, "does not take the option 'width'"),
        ('plugin = "tiny"\nresize = "big"', "", ConfigError, "option 'resize' must be int"),
        ('plugin = "tiny"\ngrayscale = "maybe"', "", ConfigError, "option 'grayscale' must be true or false"),
        ('plugin = "tiny"', 'metric = "cosin"', UnknownNameError, "unknown metric 'cosin'"),
        ('plugin = "tiny"', 'options = { label_column = "same" }', DataError, "same"),
        ('plugin = "tiny"', "options = { folds = 3 }", ConfigError, "did you mean 'n_folds'"),
    ],
)
def test_bad_names_options_and_columns_fail_before_any_model_is_built(
    use_registry, stimuli, tmp_path, tiny_net, model_table, task_table, error, message
):
    path = tmp_path / "bad.toml"
    path.write_text(
        f"[[models]]\n{model_table}\n"
        f'[[tasks]]\nplugin = "accuracy"\npairs = "{stimuli.pairs["verification"]}"\n'
        f'images = "{stimuli.images}"\n{task_table}\n'
    )
    with pytest.raises(error, match=message):
        Experiment.from_toml(path).manager(progress=False)
    assert tiny_net.constructed == 0
    assert tiny_net.built == 0


def test_missing_files_fail_before_any_model_is_built(use_registry, stimuli, tmp_path, tiny_net):
    base = f'[[models]]\nplugin = "tiny"\n[[tasks]]\nplugin = "accuracy"\nimages = "{stimuli.images}"\n'
    (tmp_path / "missing.toml").write_text(base + 'pairs = "nope.csv"\n')
    with pytest.raises(DataError, match=r"nope\.csv"):
        Experiment.from_toml(tmp_path / "missing.toml").manager(progress=False)
    (tmp_path / "nopairs.toml").write_text(base)
    with pytest.raises(ConfigError, match="--pairs"):
        Experiment.from_toml(tmp_path / "nopairs.toml").manager(progress=False)
    with pytest.raises(ConfigError, match="does not exist"):
        Experiment.from_toml(tmp_path / "absent.toml")
    (tmp_path / "typo.toml").write_text('ouptut = "x"\n' + base + 'pairs = "x.csv"\n')
    with pytest.raises(ConfigError, match=r"unknown key.*'ouptut'"):
        Experiment.from_toml(tmp_path / "typo.toml")
    assert tiny_net.constructed == 0


def test_duplicate_names_in_a_file_are_an_error(use_registry, stimuli, tmp_path):
    pairs = stimuli.pairs["verification"]
    task = f'[[tasks]]\nplugin = "accuracy"\npairs = "{pairs}"\nimages = "{stimuli.images}"\n'
    (tmp_path / "dup.toml").write_text('[[models]]\nplugin = "tiny"\n[[models]]\nplugin = "tiny"\n' + task)
    with pytest.raises(ConfigError, match="two models are named 'tiny'"):
        Experiment.from_toml(tmp_path / "dup.toml").check(use_registry)


def test_preprocessing_flags_override_the_models_own(use_registry, stimuli, tmp_path, demo_toml):
    experiment = Experiment.from_toml(
        demo_toml(tmp_path, stimuli, model_spec="tiny:resize=[20,24],grayscale=yes")
    )
    _, models = experiment.prepare(use_registry)
    model = models[0]
    assert model.preprocessing.resize == (20, 24) and model.preprocessing.grayscale is True
    assert model.preprocessing.std == (1.0, 1.0, 1.0)  # the model's own default, kept
    tensor = model.preprocess_image(stimuli.images / "upright" / "person01_v0.png")
    assert tuple(tensor.shape) == (3, 20, 24)
    torch.testing.assert_close(tensor[0], tensor[1])  # grey: three equal channels
    assert '"resize": [20, 24]' in model.describe()["preprocessing"]
    assert model.identity != experiment_models(use_registry, tmp_path, stimuli, demo_toml)[0].identity


def test_the_original_tools_preprocessing_is_one_toml_table(use_registry, stimuli, tmp_path):
    path = tmp_path / "original.toml"
    path.write_text(
        '[[models]]\nplugin = "tiny"\nresize = [224, 224]\ncrop = "none"\n'
        "mean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n"
        f'[[tasks]]\nplugin = "accuracy"\npairs = "{stimuli.pairs["verification"]}"\n'
        f'images = "{stimuli.images}"\n'
    )
    _, models = Experiment.from_toml(path).prepare(use_registry)
    image = Image.open(stimuli.images / "upright" / "person01_v0.png").convert("RGB")
    reference = transforms.Compose(
        [
            transforms.Resize((224, 224)),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )(image)
    torch.testing.assert_close(models[0].get_preprocess_function()(image), reference, rtol=0, atol=1e-6)


def experiment_models(registry, tmp_path, stimuli, demo_toml):
    """The models of the demo experiment with the plain ``tiny`` model."""
    folder = tmp_path / "plain"
    folder.mkdir()
    return Experiment.from_toml(demo_toml(folder, stimuli, model_spec="tiny")).prepare(registry)[1]


def test_cli_run_with_a_toml(use_registry, stimuli, tmp_path, demo_toml):
    path = demo_toml(tmp_path, stimuli)
    result = CliRunner().invoke(main, ["run", str(path), "--quiet", "--output", str(tmp_path / "cli-out")])
    assert result.exit_code == 0, result.output
    assert "Verification (upright)" in result.output
    assert (tmp_path / "cli-out" / "results.json").is_file()


def test_cli_run_one_off_flags(use_registry, stimuli, tmp_path):
    args = [
        "run",
        "--model",
        "tiny:seed=3",
        "--model",
        "tiny:name=tiny-b,reduction=mean",
        "--task",
        "accuracy:name=Verification,n_folds=5",
        "--pairs",
        str(stimuli.pairs["verification"]),
        "--images",
        str(stimuli.images),
        "--layers",
        "conv,fc",
        "--metric",
        "euclidean",
        "--batch-size",
        "64",
        "--no-cache",
        "--quiet",
        "--output",
        str(tmp_path / "one-off"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "one-off" / "results.json").read_text())
    assert {(m["name"], tuple(m["layers"])) for m in document["models"]} == {
        ("tiny", ("conv", "fc")),
        ("tiny-b", ("conv", "fc")),
    }
    assert document["tasks"][0]["metric"] == "euclidean"
    assert document["tasks"][0]["options"]["n_folds"] == 5
    assert document["settings"]["cache_dir"] is None
    assert document["settings"]["batch_size"] == 64


def test_cli_exit_codes(use_registry, stimuli, tmp_path, demo_toml):
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--model", "tinny", "--task", "accuracy"])
    assert result.exit_code == 2
    assert "did you mean 'tiny'" in result.output
    assert runner.invoke(main, ["run"]).exit_code == 2
    exploding = (
        f'\n[[tasks]]\nplugin = "exploding"\nname = "Exploding"\n'
        f'pairs = "{stimuli.pairs["similarity"]}"\nimages = "{stimuli.images}"\n'
    )
    path = demo_toml(tmp_path, stimuli, extra=exploding)
    result = runner.invoke(main, ["run", str(path), "--quiet"])
    assert result.exit_code == 1
    assert "Exploding" in result.output and "boom" in result.output
    assert (tmp_path / "results" / "performance" / "Similarity.csv").is_file()


def test_the_example_experiment_matches_the_demo_stimuli(use_registry, tmp_path):
    """examples/demo-experiment.toml runs on what `facebench demo --stimuli-only` writes."""
    shutil.copy(EXAMPLES / "demo-experiment.toml", tmp_path / "demo-experiment.toml")
    result = CliRunner().invoke(
        main, ["demo", "--stimuli-only", "--output", str(tmp_path / "facebench-demo")]
    )
    assert result.exit_code == 0, result.output
    experiment = Experiment.from_toml(tmp_path / "demo-experiment.toml")
    experiment.models[0].plugin = "tiny"  # vgg16 is checked by its own tests; keep this one fast
    experiment.models[0].options = {}
    tasks, _ = experiment.prepare(use_registry)
    assert [t.name for t in tasks] == [
        "Verification (upright)",
        "Verification (inverted)",
        "Similarity",
        "Same vs different identity",
        "Thatcher Effect",
    ]
