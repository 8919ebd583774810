"""The run summary leads verification with held-out figures, never the in-sample accuracy."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from facebench.cli import summary_text
from facebench_tasks.accuracy import AccuracyTask


def test_summary_shows_cross_validated_accuracy_and_auc() -> None:
    performance = pd.DataFrame(
        {
            "Model Name": ["m"],
            "Layer Name": ["fc"],
            "Task Name": ["LFW"],
            "Cross-Validated Accuracy": [0.760],
            "Cross-Validated Accuracy Std": [0.05],
            "AUC": [0.882],
            "Optimal Threshold": [0.97],
            "In-Sample Accuracy": [0.823],
            "Distance Metric": ["cosine"],
        }
    )
    manager = SimpleNamespace(
        tasks_performance_dfs={"LFW": performance},
        tasks={"LFW": SimpleNamespace(plot_columns=AccuracyTask.plot_columns)},
    )
    text = summary_text(manager)
    assert "Cross-Validated Accuracy 0.760, AUC 0.882" in text
    assert "0.823" not in text
