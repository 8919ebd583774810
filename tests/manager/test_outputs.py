"""Atomic writes, the unified summary, plots, human percentile bands and the demo stimuli."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebench import plots
from facebench.demo import feature_boxes, random_identities, write_stimuli
from facebench.errors import DataError
from facebench.pairs import read_pairs_file
from facebench.results import (
    atomic_path,
    json_safe,
    unified_summary,
    write_csv_atomic,
    write_json_atomic,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "manager"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_write_that_fails_midway_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "table.csv"

    def half_then_fail(self, path, **kwargs):
        Path(path).write_text("img1,img2\na.png,")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_csv_atomic(pd.DataFrame({"a": [1]}), target)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_old_file(tmp_path):
    target = tmp_path / "results.json"
    write_json_atomic(target, {"status": "old"})
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temporary:
        temporary.write_text('{"status": "ne')
        raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"status": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_json_safe_turns_non_finite_numbers_into_null(tmp_path):
    data = {"auc": np.float64(0.75), "nan": float("nan"), "n": np.int64(3), "path": Path("x"), "t": (1, 2)}
    assert json_safe(data) == {"auc": 0.75, "nan": None, "n": 3, "path": "x", "t": [1, 2]}
    write_json_atomic(tmp_path / "r.json", data)
    assert json.loads((tmp_path / "r.json").read_text())["nan"] is None


def test_unified_summary_columns():
    verification = pd.DataFrame(
        {
            "Model Name": ["m", "m"],
            "Layer Name": ["l1", "l2"],
            "Task Name": ["LFW", "LFW"],
            "AUC": [0.9, 0.8],
            "Distance Metric": ["cosine", "cosine"],
        }
    )
    conditions = pd.DataFrame(
        {
            "Model Name": ["m", "m", "m"],
            "Layer Name": ["l1", "l1", "l2"],
            "Condition": ["same", "diff", "same"],
            "Mean Value": [0.1, 0.5, 0.2],
            "Distance Metric": ["cosine"] * 3,
        }
    )
    summary = unified_summary({"LFW": verification, "View": conditions})
    assert list(summary.columns) == [
        "Model Name",
        "Layer Name",
        "LFW: AUC",
        "View - same: Mean Value",
        "View - diff: Mean Value",
    ]
    assert summary["View - diff: Mean Value"].iloc[0] == 0.5
    assert math.isnan(summary["View - diff: Mean Value"].iloc[1])


def performances() -> pd.DataFrame:
    rows = []
    for model, layers in (("vgg16", ["features.4", "features.16", "classifier.4"]), ("dino", ["b3", "b11"])):
        for depth, layer in enumerate(layers):
            auc = 0.6 + 0.1 * depth
            rows.append(
                {"Model Name": model, "Layer Name": layer, "AUC": auc, "Low": auc - 0.05, "High": auc + 0.05}
            )
    return pd.DataFrame(rows)


def test_plots_write_png_and_svg(tmp_path):
    band = plots.HumanBand(0.7, 0.75, 0.8)
    written = plots.bar_plot(performances(), "AUC", tmp_path, "LFW: AUC", ("Low", "High"), human_band=band)
    written += plots.layer_curve_plot(performances(), "AUC", tmp_path, "LFW: AUC by layer", human_band=band)
    written += plots.scatter_plot(
        [1, 2, 3, 4], [0.1, 0.3, 0.2, 0.5], tmp_path, "Similarity", "human", "model"
    )
    assert sorted(p.suffix for p in written) == [".png", ".png", ".png", ".svg", ".svg", ".svg"]
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC
            with Image.open(path) as image:
                assert image.width > 400 and image.height > 300
        else:
            assert "<svg" in path.read_text()
    assert not list(tmp_path.glob("*.tmp"))


def test_plots_name_missing_columns():
    with pytest.raises(DataError, match="'Accuracy'"):
        plots.bar_plot(performances(), "Accuracy", Path("unused"), "t")


def test_human_percentiles_bands_match_the_file():
    human = plots.HumanPercentiles.from_csv(FIXTURES / "human_percentiles.csv")
    table = pd.read_csv(FIXTURES / "human_percentiles.csv")
    band = human.band("LFW:  AUC ", low=25, high=75)
    column = table["LFW: AUC"]
    assert band.median == pytest.approx(column[table["Layer Name"] == 50].item())
    # 25 lies halfway between the 20th and 30th percentile rows
    expected_low = (column[table["Layer Name"] == 20].item() + column[table["Layer Name"] == 30].item()) / 2
    assert band.low == pytest.approx(expected_low)
    # the file's "Same : Mean" matches "Same: Mean"
    assert human.band("View Invariant - Frontal - Frontal - Same: Mean") is not None
    assert human.band("Not a column: AUC") is None


def test_human_percentiles_reject_a_file_without_percentiles(tmp_path):
    (tmp_path / "bad.csv").write_text("Model Name,LFW: AUC\nHumans,0.7\n")
    with pytest.raises(DataError, match="Layer Name"):
        plots.HumanPercentiles.from_csv(tmp_path / "bad.csv")


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_demo_stimuli_are_deterministic_and_complete(tmp_path):
    first = write_stimuli(tmp_path / "a", identities=4, views=3)
    second = write_stimuli(tmp_path / "b", identities=4, views=3)
    assert folder_digest(first.root) == folder_digest(second.root)
    assert folder_digest(write_stimuli(tmp_path / "c", identities=4, views=3, seed=1).root) != folder_digest(
        first.root
    )
    verification = read_pairs_file(first.pairs["verification"])
    assert set(verification["truth"].astype(int)) == {0, 1}
    same = verification[verification["truth"].astype(int) == 1]
    assert all(a.split("_v")[0] == b.split("_v")[0] for a, b in zip(same["img1"], same["img2"], strict=True))
    inverted = read_pairs_file(first.pairs["verification_inverted"])
    assert list(inverted["img1"]) == [name.replace("upright/", "inverted/") for name in verification["img1"]]
    similarity = read_pairs_file(first.pairs["similarity"])
    assert similarity["distance"].between(1, 7).all()
    assert set(read_pairs_file(first.pairs["thatcher"])["group"]) == {"upright", "inverted"}
    assert len(list((first.images).rglob("*.png"))) == 4 * 3 * 2 + 4 * 2


def test_inverted_images_are_the_upright_ones_rotated(tmp_path):
    stimuli = write_stimuli(tmp_path, identities=2, views=2)
    upright = np.asarray(Image.open(stimuli.images / "upright" / "person01_v1.png"))
    inverted = np.asarray(Image.open(stimuli.images / "inverted" / "person01_v1.png"))
    assert np.array_equal(np.rot90(upright, 2), inverted)


def test_thatcherising_flips_eyes_and_mouth_only():
    from facebench.demo import draw_face

    person = random_identities(1)[0]
    original = np.asarray(draw_face(person)).astype(int)
    thatcher = np.asarray(draw_face(person, thatcherised=True)).astype(int)
    boxes = feature_boxes(person)
    outside = np.ones(original.shape[:2], dtype=bool)
    for left, top, right, bottom in boxes:
        outside[top:bottom, left:right] = False
        assert np.array_equal(thatcher[top:bottom, left:right], original[top:bottom, left:right][::-1])
    assert np.array_equal(thatcher[outside], original[outside])
    assert not np.array_equal(thatcher, original)
