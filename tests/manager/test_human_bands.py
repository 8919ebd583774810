"""Human percentile bands are drawn against the model column the task compares them with."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from facebench import manager as manager_module
from facebench.manager import MultiModelTaskManager
from facebench.plots import HumanPercentiles
from facebench_tasks.accuracy import AccuracyTask


def test_human_accuracy_band_is_drawn_on_the_cross_validated_accuracy_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    human = HumanPercentiles(
        {"LFW: Accuracy": {25.0: 0.7, 50.0: 0.8, 75.0: 0.9}, "LFW: AUC": {25.0: 0.6, 50.0: 0.7, 75.0: 0.8}}
    )
    drawn: dict[str, object] = {}

    def record(performance, column, folder, **kwargs):
        drawn[column] = kwargs.get("human_band")
        return []

    monkeypatch.setattr(manager_module, "layer_curve_plot", record)
    performance = pd.DataFrame(
        {
            "Model Name": ["m", "m"],
            "Layer Name": ["a", "b"],
            "Cross-Validated Accuracy": [0.7, 0.8],
            "AUC": [0.8, 0.9],
            "In-Sample Accuracy": [0.75, 0.85],
        }
    )
    task = SimpleNamespace(
        name="LFW", plot_columns=AccuracyTask.plot_columns, human_columns=AccuracyTask.human_columns
    )
    with MultiModelTaskManager(cache_dir=None, human_percentiles=human, progress=False) as manager:
        manager._layer_curves(task, performance, tmp_path)
    assert set(drawn) == {"Cross-Validated Accuracy", "AUC"}
    assert drawn["Cross-Validated Accuracy"].median == pytest.approx(0.8)
    assert drawn["AUC"].median == pytest.approx(0.7)


def test_human_likeness_places_cross_validated_accuracy_on_the_human_accuracy() -> None:
    from facebench.human_likeness import assess

    human = HumanPercentiles({"LFW: Accuracy": {0.0: 0.6, 25.0: 0.7, 50.0: 0.8, 75.0: 0.9, 100.0: 1.0}})
    records = [
        {
            "task": "LFW",
            "model": "m",
            "layer": "fc",
            "condition": None,
            "values": {"Cross-Validated Accuracy": 0.85, "In-Sample Accuracy": 0.95, "AUC": 0.9},
        }
    ]
    headline = {"LFW": list(AccuracyTask.plot_columns)}
    result = assess(records, human, headline, {"LFW": AccuracyTask.human_columns})
    [placement] = result.placements
    assert placement.column == "LFW: Cross-Validated Accuracy"
    assert placement.value == 0.85 and placement.reference.centre == pytest.approx(0.8)
    assert not assess(records, human, headline).placements  # without the mapping: nothing to compare
