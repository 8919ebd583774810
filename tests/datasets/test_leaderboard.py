"""`facebench leaderboard`: several runs ranked per dataset metric, settings flagged, values escaped."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from facebench import ModelSpec
from facebench.cli import main
from facebench.leaderboard import build_leaderboard, direction
from facebench.registry import Entry, Registry, get_registry
from facebench.tiny_model import TinyConvNet

METRIC = "Cross-Validated Accuracy"
pytestmark = pytest.mark.filterwarnings("ignore:.*is not the published pairs.txt:UserWarning")


@pytest.fixture
def with_tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    base = get_registry()
    registry = Registry(plugins=base.plugins)
    for entry in base:
        registry.add(entry)
    registry.add(Entry("model", ModelSpec("tiny", TinyConvNet, "tiny test network"), "facebench-tests", "0"))
    for module in ("registry", "experiment", "datasets", "cli"):
        monkeypatch.setattr(f"facebench.{module}.get_registry", lambda: registry)


def _edit(run: Path, copy: Path, change) -> Path:
    shutil.copytree(run, copy)
    document = json.loads((copy / "results.json").read_text())
    change(document)
    (copy / "results.json").write_text(json.dumps(document))
    return copy


def test_leaderboard_ranks_flags_and_escapes(with_tiny, lfw_copy: Path, tmp_path: Path) -> None:
    run = tmp_path / "run-a"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--quiet",
            "--no-cache",
            "--dataset",
            f"lfw:path={lfw_copy}",
            "--model",
            "tiny:seed=1,name=net-a",
            "--model",
            "tiny:seed=2,name=net-b",
            "--output",
            str(run),
        ],
    )
    assert result.exit_code == 0, result.output

    def other_settings(document: dict) -> None:  # another run of lfw, with other options
        document["tasks"][0]["options"]["far_levels"] = [0.1]
        for record in document["metrics"]:
            record["model"] = record["model"].replace("net-", "other-")

    def hostile_name(document: dict) -> None:
        for record in document["metrics"]:
            record["model"] = record["model"].replace("net-a", "<script>alert(1)</script>")

    flagged = _edit(run, tmp_path / "run-b", other_settings)
    hostile = _edit(run, tmp_path / "run-c", hostile_name)
    page, table = tmp_path / "board.html", tmp_path / "board.csv"
    result = CliRunner().invoke(
        main, ["leaderboard", str(run), str(flagged), str(hostile), "-o", str(page), "--csv", str(table)]
    )
    assert result.exit_code == 0, result.output
    assert f"Flagged: dataset lfw, task 'lfw': {flagged} used different settings" in result.output

    rows = list(csv.DictReader(table.open()))
    # best layers, from the run's own unified summary: each model's highest accuracy over its layers
    summary = pd.read_csv(run / "models_unified_results.csv")
    column = f"lfw: {METRIC}"
    best = summary.loc[summary.groupby("Model Name")[column].idxmax()].set_index("Model Name")
    ours = {
        r["model"]: r
        for r in rows
        if r["metric"] == METRIC and r["layer_choice"] == "best layer" and r["run"] == str(run)
    }
    for model in ("net-a", "net-b"):
        assert ours[model]["layer"] == best.loc[model, "Layer Name"]
        assert float(ours[model]["value"]) == pytest.approx(best.loc[model, column])
    ranked = [r for r in rows if r["metric"] == METRIC and r["layer_choice"] == "best layer"]
    values = [float(r["value"]) for r in ranked]
    assert values == sorted(values, reverse=True) and int(ranked[0]["rank"]) == 1
    ties = {}
    for r in ranked:  # equal values share the rank of the first of them
        ties.setdefault(float(r["value"]), set()).add(int(r["rank"]))
    assert all(len(ranks) == 1 for ranks in ties.values())
    chosen = {
        r["model"]: r["layer"] for r in rows if r["layer_choice"] == "chosen layer" and r["run"] == str(run)
    }
    assert chosen == {"net-a": "fc", "net-b": "fc"}  # the last extracted layer
    assert {r["flag"] for r in rows if r["run"] == str(flagged)} == {
        "settings differ from the other runs of this task"
    }
    assert {r["flag"] for r in rows if r["run"] != str(flagged)} == {""}
    assert all(r["interval_kind"] == "± std" for r in rows if r["metric"] == METRIC)

    html = page.read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="run-a/report.html"' in html


def test_chosen_layer_and_direction(with_tiny, lfw_copy: Path, tmp_path: Path) -> None:
    assert direction("EER") == -1 and direction("AUC") == 1 and direction("Mean Value") == 0
    run = tmp_path / "run"
    args = [
        "run",
        "--quiet",
        "--no-cache",
        "--dataset",
        f"lfw:path={lfw_copy}",
        "--model",
        "tiny",
        "--output",
        str(run),
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    board = build_leaderboard([run], {"tiny": "conv"})
    assert {r.layer for r in board.rows if r.layer_choice == "chosen layer"} == {"conv"}
    auc = [r for r in board.rows if r.metric == "AUC"]
    assert len(auc) == 2 and all(r.rank == 1 for r in auc)  # one model: first at both layer choices
