"""`status` in results.json is decided after every file is written, and the exit code agrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from facebench.cli import main
from facebench.manager import MultiModelTaskManager
from facebench.registry import KINDS, Registry, get_registry
from facebench_tasks.accuracy import AccuracyTask


def status_of(folder: Path) -> str:
    return json.loads((folder / "results.json").read_text())["status"]


def run(model, stimuli, out: Path) -> MultiModelTaskManager:
    task = AccuracyTask(
        name="verification", pairs_file_path=stimuli.pairs["verification"], images_path=stimuli.images
    )
    with MultiModelTaskManager(
        models=[model], tasks=[task], batch_size=4, cache_dir=None, num_workers=0, progress=False
    ) as manager:
        manager.run_all_tasks_all_models(export_path=out)
    return manager


def test_a_failed_plot_makes_the_status_completed_with_failures(stimuli, tiny_net, tmp_path, monkeypatch):
    def broken_plot(self, folder, performance, pairs_distances=None):
        raise ValueError("a plot that cannot be drawn")

    monkeypatch.setattr(AccuracyTask, "plot", broken_plot)
    manager = run(tiny_net(name="tiny"), stimuli, tmp_path / "out")
    assert [failure.stage for failure in manager.failures] == ["plot"]
    assert manager.status == status_of(tmp_path / "out") == "completed with failures"
    assert "completed with failures" in (tmp_path / "out" / "report.html").read_text()


def test_a_failed_report_makes_the_status_completed_with_failures(stimuli, tiny_net, tmp_path, monkeypatch):
    def broken_report(folder):
        raise ValueError("a report that cannot be written")

    monkeypatch.setattr("facebench.report.write_report", broken_report)
    manager = run(tiny_net(name="tiny"), stimuli, tmp_path / "out")
    assert [failure.stage for failure in manager.failures] == ["report"]
    assert manager.status == status_of(tmp_path / "out") == "completed with failures"
    assert not (tmp_path / "out" / "report.html").exists()


@pytest.fixture
def cli_registry(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    for kind in KINDS:
        have = set(registry.names(kind))
        for entry in get_registry().entries(kind):
            if entry.spec.name not in have:
                registry.add(entry)
    monkeypatch.setattr("facebench.experiment.get_registry", lambda: registry)
    monkeypatch.setattr("facebench.cli.get_registry", lambda: registry)
    return registry


def test_the_exit_code_follows_the_status_after_the_report(cli_registry, stimuli, tmp_path, monkeypatch):
    def broken_report(folder):
        raise ValueError("a report that cannot be written")

    monkeypatch.setattr("facebench.report.write_report", broken_report)
    args = ["run", "--model", "tiny", "--task", "accuracy", "--no-cache", "--quiet"]
    args += ["--pairs", str(stimuli.pairs["verification"]), "--images", str(stimuli.images)]
    result = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert status_of(tmp_path / "out") == "completed with failures"
    assert "a report that cannot be written" in result.output


def test_the_cli_says_where_a_rerun_with_no_result_went(cli_registry, stimuli, tmp_path):
    common = ["run", "--model", "tiny", "--no-cache", "--quiet", "--output", str(tmp_path / "out")]
    common += ["--pairs", str(stimuli.pairs["verification"]), "--images", str(stimuli.images)]
    assert CliRunner().invoke(main, [*common, "--task", "accuracy"]).exit_code == 0
    result = CliRunner().invoke(main, [*common, "--task", "exploding"])
    assert result.exit_code == 1, result.output
    [beside] = [p for p in tmp_path.iterdir() if p.name.startswith("out.failed-")]
    assert (
        f"This run is incomplete (failed); {tmp_path / 'out'} keeps the previous complete run, "
        in result.output
    )
    assert f"and this one is in {beside}" in result.output
    assert status_of(tmp_path / "out") == "completed" and status_of(beside) == "failed"
