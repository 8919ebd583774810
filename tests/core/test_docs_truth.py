"""Docstrings that state a number or a choice say what the code does."""

from __future__ import annotations

import numpy as np

from facebench.demo import DEMO_REDUCTION, demo_experiment_toml
from facebench_tasks import stats


def test_demo_experiment_docstring_names_the_reduction_it_writes() -> None:
    assert f'reduction = "{DEMO_REDUCTION}"' in demo_experiment_toml()
    assert DEMO_REDUCTION == "flatten"
    assert "flattened" in demo_experiment_toml.__doc__ and "averaged" not in demo_experiment_toml.__doc__


def test_tar_at_far_takes_the_most_lenient_threshold_within_the_far() -> None:
    labels = np.array([True] * 4 + [False] * 10)
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.95, 0.6, 0.5, 0.4, 0.3, 0.1, 0.05, 0.04, 0.03, 0.02])
    # FAR <= 0.1 allows one false accept (0.95): thresholds 0.95 down to 0.65 all qualify; the
    # strictest (0.95) accepts no same pair, the most lenient (0.7) accepts three
    assert stats.tar_at_far(labels, scores, 0.1) == 0.75
    assert "most lenient" in stats.tar_at_far.__doc__ and "strictest" not in stats.tar_at_far.__doc__
