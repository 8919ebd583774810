"""``facebench describe``, ``facebench list --json`` options, and typed option errors at the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from facebench.cli import main
from facebench.experiment import Experiment
from facebench.registry import get_registry


def test_describe_a_model_shows_options_defaults_and_preprocessing() -> None:
    result = CliRunner().invoke(main, ["describe", "vgg16", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["kind"], info["plugin"]) == ("model", "facebench-models")
    assert info["default_layers"] == ["classifier.4"] and info["default_reduction"] == "flatten"
    assert info["preprocessing"]["resize"] == 256 and info["preprocessing"]["crop"] == 224
    options = {option["name"]: option for option in info["options"]}
    pretrained = options["pretrained"]
    assert {key: pretrained[key] for key in ("name", "type", "default", "required")} == {
        "name": "pretrained",
        "type": "true or false",
        "default": True,
        "required": False,
    }
    assert "(false)" in pretrained["help"] and pretrained["help"].endswith(".")  # a whole sentence
    assert options["resize"]["type"] == "int | [int, int] | none"
    assert options["interpolation"]["help"]

    text = CliRunner().invoke(main, ["describe", "vgg16"]).output
    assert "Preprocessing: resize=256, crop=224" in text
    assert "pretrained" in text and "model's default" in text


def test_describe_a_task_and_a_metric_sharing_a_name_needs_kind() -> None:
    ambiguous = CliRunner().invoke(main, ["describe", "correlation"])
    assert ambiguous.exit_code == 2
    assert "--kind task or --kind metric" in ambiguous.output
    metric = json.loads(
        CliRunner().invoke(main, ["describe", "correlation", "--kind", "metric", "--json"]).output
    )
    assert metric["bounded"] is True and metric["options"] == []
    task = json.loads(CliRunner().invoke(main, ["describe", "accuracy", "--json"]).output)
    assert {"n_folds", "label_column", "distance_metric"} <= {o["name"] for o in task["options"]}
    assert task["pairs_file"] == "required"


def test_describe_lists_the_label_column_among_the_required_columns() -> None:
    accuracy = json.loads(CliRunner().invoke(main, ["describe", "accuracy", "--json"]).output)
    assert accuracy["required_columns"] == ["img1", "img2", "truth"]
    text = CliRunner().invoke(main, ["describe", "accuracy"]).output
    assert "Required columns: img1, img2, truth" in text
    probe = json.loads(CliRunner().invoke(main, ["describe", "probe", "--json"]).output)
    assert probe["required_table_columns"] == ["image", "label"] and "required_columns" not in probe


def test_describe_unknown_names_and_families_without_architectures() -> None:
    unknown = CliRunner().invoke(main, ["describe", "vgg61"])
    assert unknown.exit_code == 2 and "did you mean 'vgg16'" in unknown.output
    no_list = CliRunner().invoke(main, ["describe", "vgg16", "--available"])
    assert no_list.exit_code == 2 and "does not list architectures" in no_list.output


def test_list_json_has_every_entrys_options() -> None:
    listing = json.loads(CliRunner().invoke(main, ["list", "models", "--json"]).output)
    vgg16 = next(entry for entry in listing["models"] if entry["name"] == "vgg16")
    assert {"pretrained", "num_identities", "resize", "crop", "mean", "std"} <= {
        option["name"] for option in vgg16["options"]
    }


def test_a_bad_task_option_value_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    files = ["--pairs", str(tmp_path / "pairs.csv"), "--images", str(tmp_path / "images")]
    result = CliRunner().invoke(
        main, ["run", "--model", "vgg16:pretrained=false", "--task", "accuracy:n_folds=abc", *files]
    )
    assert result.exit_code == 2
    assert result.output.strip() == "Error: task 'accuracy': option 'n_folds' must be int, not 'abc'"


def test_pretrained_false_as_a_toml_string_means_random_weights(tmp_path: Path) -> None:
    path = tmp_path / "experiment.toml"
    path.write_text(
        '[[models]]\nplugin = "vgg16"\npretrained = "false"\ncrop = "none"\nresize = [224, 224]\n'
        '[[tasks]]\nplugin = "accuracy"\npairs = "p.csv"\nimages = "."\n'
    )
    config = Experiment.from_toml(path).models[0]
    model = get_registry().create("model", config.plugin, **config.options)
    assert model.pretrained is False
    assert model.weights_fingerprint() == "random:seed=0"
    assert (model.preprocessing.resize, model.preprocessing.crop) == ((224, 224), None)
