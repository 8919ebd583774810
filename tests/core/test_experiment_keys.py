"""docs/experiments.md lists every key an experiment file accepts, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from facebench import experiment

DOCS = Path(__file__).resolve().parents[2] / "docs" / "experiments.md"
SECTION = "## Every key of an experiment file"
TABLE_KEYS = {
    "models": experiment.MODEL_KEYS,
    "tasks": experiment.TASK_KEYS,
    "analyses": experiment.ANALYSIS_KEYS,
}


def documented_keys() -> set[tuple[str, str]]:
    """``(where, key)`` of every row of the reference tables: where is "top" or a table name."""
    text = DOCS.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOCS} has no section {SECTION!r}"
    keys: set[tuple[str, str]] = set()
    for line in text.split(SECTION, 1)[1].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and re.fullmatch(r"`\w+`", cells[0]):
            keys.add(("top", cells[0].strip("`")))
        elif len(cells) == 3 and re.fullmatch(r"`\w+`", cells[1]):
            keys.add((cells[0], cells[1].strip("`")))
    return keys


def accepted_keys() -> set[tuple[str, str]]:
    """What the experiment reader accepts: its top-level keys, and in each table ``plugin``,
    ``options`` and the short names it maps onto options."""
    keys = {("top", key) for key in experiment.TOP_LEVEL_KEYS}
    for table, aliases in TABLE_KEYS.items():
        keys |= {(table, "plugin"), (table, "options")} | {(table, key) for key in aliases}
    return keys


def test_the_key_reference_matches_the_experiment_reader() -> None:
    documented, accepted = documented_keys(), accepted_keys()
    missing = sorted(accepted - documented)
    stale = sorted(documented - accepted)
    assert not missing, f"add a row to the key reference in {DOCS} for each of {missing}"
    assert not stale, f"{DOCS} lists keys the experiment reader does not accept: {stale}"


def test_every_documented_key_is_read_from_a_file(tmp_path: Path) -> None:
    """A key of the reference reaches the experiment (a misspelled one would be refused)."""
    parsed = experiment.Experiment.from_mapping(
        {
            "batch_size": 3,
            "models": [{"plugin": "vgg16", "layers": "a,b", "options": {"pretrained": False}}],
            "tasks": [{"plugin": "accuracy", "pairs": "p.csv", "images": "i", "metric": "cosine"}],
        },
        base_dir=tmp_path,
    )
    assert parsed.batch_size == 3
    assert parsed.models[0].options == {"extract_layers": ["a", "b"], "pretrained": False}
    assert parsed.tasks[0].options == {
        "pairs_file_path": tmp_path / "p.csv",
        "images_path": tmp_path / "i",
        "distance_metric": "cosine",
    }
