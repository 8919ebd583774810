"""Two tiny real runs (two seeds of a small network on the demo stimuli) with the lab's human
percentile table, one failing task, and their results folders for the report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from facebench.demo import write_stimuli
from facebench.manager import MultiModelTaskManager
from facebench.task import BaseTask
from facebench.testing import TinyConvNet
from facebench_tasks.accuracy import AccuracyTask
from facebench_tasks.correlation import CorrelationTask
from facebench_tasks.relative_difference import RelativeDifferenceTask

HUMAN_PERCENTILES = Path(__file__).parent.parent / "fixtures" / "manager" / "human_percentiles.csv"


class SmallNet(TinyConvNet):
    """facebench.testing's tiny network, on the CPU."""

    def __init__(self, name: str | None = None, seed: int = 0, device: str = "cpu", **options: Any) -> None:
        super().__init__(name=name, seed=seed, device=device, **options)


class BrokenTask(BaseTask):
    def compute_task_performance(self, pairs_distances_df):
        raise RuntimeError("boom: this task always fails")


def run(folder: Path, stimuli: Any, seed: int, plots: bool = True) -> Path:
    """Two models x two layers on LFW-named verification, a Thatcher task and a similarity
    task (no human data), plus a failing task; returns the results folder."""
    images = stimuli.images
    tasks = [
        AccuracyTask(
            name="LFW", pairs_file_path=stimuli.pairs["verification"], images_path=images, n_folds=3
        ),
        RelativeDifferenceTask(
            name="Thatcher Effect",
            pairs_file_path=stimuli.pairs["thatcher"],
            images_path=images,
            group_column="group",
            groups=["upright", "inverted"],
            identity_column="identity",
            n_bootstrap=50,
        ),
        CorrelationTask(
            name="Similarity", pairs_file_path=stimuli.pairs["similarity"], images_path=images, n_bootstrap=50
        ),
        BrokenTask(name="Broken", pairs_file_path=stimuli.pairs["verification"], images_path=images),
    ]
    models = [SmallNet(name="net-a", seed=seed), SmallNet(name="net-b", seed=seed + 10)]
    with MultiModelTaskManager(
        models=models,
        tasks=tasks,
        batch_size=64,
        cache_dir=None,
        num_workers=0,
        progress=False,
        human_percentiles=HUMAN_PERCENTILES,
    ) as manager:
        manager.run_all_tasks_all_models(export_path=folder, plots=plots)
    return folder


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two results folders (seeds 0 and 1, the second without plots), each with its report."""
    root = tmp_path_factory.mktemp("report-runs")
    stimuli = write_stimuli(root / "stimuli", identities=4, views=2)
    return run(root / "seed-0", stimuli, 0), run(root / "seed-1", stimuli, 1, plots=False)
