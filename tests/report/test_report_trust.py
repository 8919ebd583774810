"""What a hand-edited or malformed input cannot do to the report: embed files from outside the
run folder, run an inline script, end in a traceback, or be ignored without a word."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from facebench.cli import main
from facebench.errors import DataError
from facebench.manager import MultiModelTaskManager
from facebench.report import load_run, render, write_report


def copy_run(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "run"))


def edit(folder: Path, change) -> None:
    target = folder / "results.json"
    document = json.loads(target.read_text())
    change(document)
    target.write_text(json.dumps(document))


def test_only_files_inside_the_run_folder_are_embedded(runs, tmp_path):
    folder = copy_run(runs[0], tmp_path)
    secret = tmp_path / "secret.svg"
    secret.write_text('<svg xmlns="http://www.w3.org/2000/svg"><text>SECRET-OUTSIDE</text></svg>')
    plots = sorted(
        name
        for name in json.loads((folder / "results.json").read_text())["files"]
        if name.startswith("plots/LFW/")
    )
    escape = "plots/LFW/../../../secret.svg"
    edit(folder, lambda d: d["files"].extend([escape, str(secret), "plots/LFW/x/../../../../secret.svg"]))
    (folder / "plots" / "LFW" / "linked.svg").symlink_to(secret)
    edit(folder, lambda d: d["files"].append("plots/LFW/linked.svg"))
    html = (write_report(folder)).read_text()
    assert "SECRET-OUTSIDE" not in html and "secret.svg" not in html
    assert plots and all(Path(p).stem in html for p in plots)  # the run's own plots still are


def test_the_page_allows_its_own_script_only(runs, tmp_path):
    html = (runs[0] / "report.html").read_text()
    policy = re.search(r'Content-Security-Policy" content="([^"]*)"', html).group(1)
    script_src = re.search(r"script-src ([^;]*)", policy).group(1).split()
    assert "'unsafe-inline'" not in script_src
    [script] = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert script_src == [f"'sha256-{digest}'"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d.update(metrics="none"), "'metrics' must be a list"),
        (lambda d: d["metrics"].__setitem__(0, 3), "metrics[0] must be an object"),
        (lambda d: d["metrics"][0].update(values=[1, 2]), "metrics[0].values must be an object"),
        (lambda d: d["metrics"][0]["values"].update(AUC="high"), "metrics[0].values['AUC'] must be a number"),
        (lambda d: d["metrics"][0].update(task=7), "metrics[0].task must be a string"),
        (lambda d: d.update(tasks={"LFW": 1}), "'tasks' must be a list"),
        (lambda d: d["tasks"][0].update(headline_metrics="AUC"), "tasks[0].headline_metrics"),
        (lambda d: d.update(settings=[]), "'settings' must be an object"),
        (lambda d: d.update(failures=[{"error": 1}]), "failures[0].error must be a string"),
        (lambda d: d.update(files={"a": 1}), "'files' must be a list of file names"),
        (lambda d: d.update(models=["net-a"]), "models[0] must be an object"),
    ],
)
def test_a_results_json_with_wrong_types_is_one_error(runs, tmp_path, change, named):
    folder = copy_run(runs[0], tmp_path)
    edit(folder, change)
    result = CliRunner().invoke(main, ["report", str(folder)])
    assert result.exit_code == 2, result.output
    assert "is not shaped as facebench writes it" in result.output and named in result.output
    assert "Traceback" not in result.output


WRONG = ["text", 3, 1.5, True, None, [], [1], ["x"], {}, {"a": 1}, [{"a": [1]}]]


@pytest.mark.parametrize(
    "key",
    [
        "metrics",
        "tasks",
        "models",
        "failures",
        "files",
        "settings",
        "environment",
        "experiment",
        "status",
        "plugins_used",
        "analyses",
        "duration_seconds",
    ],
)
def test_any_wrong_type_at_the_top_is_an_error_or_a_page_never_a_traceback(runs, tmp_path, key):
    folder = copy_run(runs[1], tmp_path)
    original = json.loads((folder / "results.json").read_text())
    for value in WRONG:
        (folder / "results.json").write_text(json.dumps({**original, key: value}))
        try:
            write_report(folder, tmp_path / "r.html")
        except DataError:
            continue


def empty_percentiles(tmp_path: Path) -> Path:
    (tmp_path / "humans.csv").write_bytes(b"")
    return tmp_path / "humans.csv"


def test_an_empty_human_percentiles_file_is_one_error_in_report(runs, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "report",
            str(runs[0]),
            "-o",
            str(tmp_path / "r.html"),
            "--human-percentiles",
            str(empty_percentiles(tmp_path)),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "humans.csv" in result.output and "it is empty" in result.output
    assert "Traceback" not in result.output


def test_an_empty_human_percentiles_file_is_refused_before_a_run(tmp_path):
    with pytest.raises(DataError, match=r"humans\.csv'.*it is empty"):
        MultiModelTaskManager(cache_dir=None, human_percentiles=empty_percentiles(tmp_path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Model Name,Layer Name,LFW: AUC\nHumans,0,0.7\nHumans,50,high\n",
            r"'LFW: AUC' holds 'high' \(line 3\)",
        ),
        ("Model Name,Layer Name,LFW: AUC\nMachines,0,0.7\n", r"no row has 'Model Name' = Humans"),
        ("Layer Name,LFW: AUC\n0,0.7\n250,0.9\n", r"percentiles \(numbers 0\.\.100\)"),
        ("Layer Name,LFW: AUC\n0,\n50,\n", r"no column holds a value"),
        ('Layer Name,LFW: AUC\n0,"0.7\n', r"it is not a CSV table"),
    ],
)
def test_a_malformed_human_percentiles_file_is_an_error_not_ignored(runs, tmp_path, text, message):
    (tmp_path / "humans.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        MultiModelTaskManager(cache_dir=None, human_percentiles=tmp_path / "humans.csv")
    with pytest.raises(DataError, match=message):
        render([load_run(runs[0])], tmp_path / "r.html", tmp_path / "humans.csv")
