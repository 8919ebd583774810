"""The demo's pairs files: every pair once, so no pair counts twice in a metric."""

from __future__ import annotations

import warnings

from facebench.demo import write_stimuli
from facebench.pairs import RepeatedPairsWarning, read_pairs_file


def test_demo_pairs_files_repeat_no_pair(tmp_path):
    stimuli = write_stimuli(tmp_path / "stimuli")
    assert stimuli.pairs, "the demo writes pairs files"
    for key, path in stimuli.pairs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", RepeatedPairsWarning)
            frame = read_pairs_file(path)
        assert len(frame) > 0, key
