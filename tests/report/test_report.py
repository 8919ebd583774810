"""report.html: written by every run, numbers as recorded, plots inline, failures, provenance,
human-likeness against a computation from the CSVs, comparisons, and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from facebench import report as report_module
from facebench.cli import main, report_line
from facebench.manager import MultiModelTaskManager
from facebench.report import load_run, render, write_report

HUMAN_PERCENTILES = Path(__file__).parent.parent / "fixtures" / "manager" / "human_percentiles.csv"


def page(folder: Path) -> str:
    return (folder / "report.html").read_text(encoding="utf-8")


def test_every_run_writes_its_report(runs):
    for folder in runs:
        document = json.loads((folder / "results.json").read_text())
        assert (folder / "report.html").is_file()
        assert "report.html" in document["files"]
        assert not [f for f in document["failures"] if f["stage"] == "report"]
        assert document["tasks"][0]["headline_metrics"]  # what the report shows per task
        assert document["settings"]["human_percentiles_sha256"]


def test_every_headline_number_is_the_recorded_one_at_full_precision(runs):
    folder = runs[0]
    html = page(folder)
    document = json.loads((folder / "results.json").read_text())
    headline = {t["name"]: t["headline_metrics"] for t in document["tasks"]}
    checked = 0
    for record in document["metrics"]:
        for metric in headline[record["task"]]:
            value = record["values"].get(metric)
            if value is not None:
                assert f'data-v="{float(value)!r}"' in html, (record["task"], metric)
                checked += 1
    assert checked >= 12  # 3 tasks x 2 models x 2 layers at least


def test_plots_are_inline_and_nothing_points_to_the_network(runs):
    folder = runs[0]
    html = page(folder)
    sources = re.findall(r'<img src="([^"]*)"', html)
    stems = {p.stem for p in (folder / "plots").rglob("*") if p.suffix in (".png", ".svg")}
    assert len(sources) == len(stems) > 0
    assert all(
        s.startswith(("data:image/webp;base64,", "data:image/png;base64,", "data:image/svg+xml"))
        for s in sources
    )
    assert all(re.search(r'alt="[^"]{10,}"', tag) for tag in re.findall(r"<img [^>]*>", html))
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "default-src 'none'" in html  # the page's CSP forbids any request


def test_failures_and_provenance_are_shown(runs):
    folder = runs[0]
    html = page(folder)
    document = json.loads((folder / "results.json").read_text())
    assert "boom: this task always fails" in html
    assert "Traceback" in html
    for model in document["models"]:
        assert model["weights_fingerprint"] in html
    for key in ("facebench_version", "command_line"):
        assert f"<code>{report_module._e(document[key])}</code>" in html
    assert document["environment"]["torch"] in html


def test_ranking_matches_a_computation_from_the_performance_tables(runs):
    """Distance = |value - human median| / human IQR, best layer per task, mean over tasks,
    recomputed here from the CSVs and the lab table with numpy's interpolation."""
    folder = runs[0]
    humans = pd.read_csv(HUMAN_PERCENTILES)

    def reference(column):
        table = humans[["Layer Name", column]].dropna()
        ps, vs = table["Layer Name"].to_numpy(float), np.sort(table[column].to_numpy(float))
        q25, q50, q75 = np.interp([25, 50, 75], ps, vs)
        return q50, q75 - q25

    parts = {}
    for task, column, metric in (
        ("LFW", "LFW: AUC", "AUC"),
        ("Thatcher Effect", "Thatcher Effect: Relative Difference", "Relative Difference"),
    ):
        median, iqr = reference(column)
        table = pd.read_csv(folder / "performance" / f"{task.replace(' ', '_')}.csv")
        table["distance"] = (table[metric] - median).abs() / iqr
        parts[task] = table.groupby("Model Name")["distance"].min()
    expected = (parts["LFW"] + parts["Thatcher Effect"]) / 2
    html = page(folder)
    ranking = html[html.index("Models ranked by aggregate") :]
    ranking = ranking[: ranking.index("</table>")]
    rows = re.findall(r'<th scope="row">([^<]+)</th><td class="n" data-v="([^"]+)"', ranking)
    assert {model: float(value) for model, value in rows} == pytest.approx(expected.to_dict(), rel=1e-12)
    assert [m for m, _ in rows] == list(expected.sort_values().index)
    assert "No human reference data for: <strong>Similarity</strong>" in html


def test_a_comparison_aligns_runs_and_shows_differences(runs, tmp_path):
    output = write_report(list(runs), tmp_path / "comparison.html")
    html = output.read_text(encoding="utf-8")
    assert "Relative Difference · seed-0" in html and "Relative Difference · seed-1" in html
    a, b = (
        pd.read_csv(run / "performance" / "Thatcher_Effect.csv").set_index(["Model Name", "Layer Name"])
        for run in runs
    )
    metric = "Relative Difference"
    for key in a.index:
        first, second = a.loc[key], b.loc[key]
        delta = float(second[metric] - first[metric])
        overlap = first[f"{metric} CI Low"] <= second[f"{metric} CI High"] and (
            second[f"{metric} CI Low"] <= first[f"{metric} CI High"]
        )
        cell = re.search(
            rf'<td class="([^"]+)" data-v="{float(second[metric])!r}" title="[^"]*'
            rf"difference to seed-0: {re.escape(repr(delta))}\"",
            html,
        )
        assert cell, key
        expected = "n diff" if overlap else "n sig"
        assert cell.group(1) == (expected if delta else "n"), key
    assert "<tr class=differs>" in html  # e.g. the seeds differ in the provenance
    assert "Aggregate · seed-1" in html


def test_a_report_that_fails_is_recorded_and_results_are_kept(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the report broke")

    monkeypatch.setattr(report_module, "write_report", broken)
    with MultiModelTaskManager(cache_dir=None, progress=False) as manager:
        assert manager.export_report(tmp_path) is None
    assert [f.stage for f in manager.failures] == ["report"]
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["failures"][0]["error"] == "RuntimeError: the report broke"
    assert report_line(tmp_path) == "No report.html was written (see the failures)"


def test_missing_or_absent_human_data_is_said(runs, tmp_path):
    run = load_run(runs[1])
    run.document["settings"]["human_percentiles"] = str(tmp_path / "gone.csv")
    html = render([run], tmp_path / "r.html")
    assert "gone.csv" in html and "was not found" in html
    assert "No human reference data for: <strong>LFW</strong>, <strong>Thatcher Effect</strong>" in html
    assert "Models ranked by aggregate" not in html

    bad = tmp_path / "bad.csv"
    bad.write_text("Model Name,LFW: AUC\nHumans,0.8\n")
    run.document["settings"]["human_percentiles"] = str(bad)
    assert "could not be used" in render([run], tmp_path / "r.html")

    run = load_run(runs[0])
    run.document["settings"]["human_percentiles_sha256"] = "0" * 64
    html = render([run], tmp_path / "r.html")
    assert "changed since the run" in html and "Models ranked by aggregate" in html


def test_cli_report(runs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["report", str(runs[0]), str(runs[1]), "-o", str(tmp_path / "c.html")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Report: {(tmp_path / 'c.html').resolve().as_uri()}"
    result = runner.invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no results.json" in result.output
    assert (
        report_line(runs[0])
        == f"Report: {(runs[0] / 'report.html').resolve().as_uri()}  (open it in a browser)"
    )


def test_a_comparison_marks_rows_one_run_lacks(runs, tmp_path):
    first, second = load_run(runs[0]), load_run(runs[1])
    first.document["metrics"] = [r for r in first.document["metrics"] if r["model"] != "net-b"]
    html = render([first, second], tmp_path / "c.html")
    lfw = html[html.index('<h2 id="task-1">') :]
    lfw = lfw[: lfw.index("</table>")]
    assert lfw.count('title="not in seed-0"') == 2 * 2  # net-b x 2 layers x 2 headline metrics
    assert lfw.count("seed-0 has no value") == 2 * 2
    assert lfw.split("<tbody>")[1].count("<tr>") == 4  # rows of both runs, aligned
