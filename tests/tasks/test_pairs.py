"""Pairs files as the lab publishes them read without hand-editing; bad ones get clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebench.errors import DataError
from facebench.pairs import (
    RepeatedPairsWarning,
    binary_labels,
    numeric_column,
    read_pairs_file,
    require_columns,
    text_column,
)


def test_csv_with_txt_extension_and_subfolder_paths(fixtures: Path) -> None:
    frame = read_pairs_file(fixtures / "lfw_pairs_head.txt")
    assert list(frame.columns) == ["img1", "img2", "same"]
    assert len(frame) == 40
    assert frame["img1"].iloc[0] == "Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert frame["same"].tolist() == [1] * 20 + [0] * 20
    assert pd.api.types.is_integer_dtype(frame["same"])


def test_unnamed_index_column_is_dropped(fixtures: Path) -> None:
    frame = read_pairs_file(fixtures / "inversion_upright_same.csv")
    assert list(frame.columns) == ["img1", "img2", "same"]
    assert frame.iloc[0].tolist() == ["Aaron_Guiel_0001.jpg", "Pascal_Rheaume_0001.jpg", 0]
    assert len(frame) == 12


def test_headerless_space_separated_list_with_crlf(fixtures: Path) -> None:
    raw = (fixtures / "inversion_inverted_pairs.txt").read_bytes()
    assert b"\r\n" in raw and b"," not in raw  # the quirk under test is really in the fixture
    frame = read_pairs_file(fixtures / "inversion_inverted_pairs.txt")
    assert list(frame.columns) == ["img1", "img2"]
    assert len(frame) == 12
    assert frame.iloc[0].tolist() == [
        "Aaron_Guiel_0001.jpg.flipped.jpg",
        "Pascal_Rheaume_0001.jpg.flipped.jpg",
    ]
    assert not frame["img2"].str.contains("\r").any()


def test_cond_column_and_labels_with_spaces(fixtures: Path) -> None:
    frame = read_pairs_file(fixtures / "view_invariant_conditions.csv")
    assert list(frame.columns) == ["img1", "img2", "cond"]
    assert list(pd.unique(frame["cond"])) == [
        "Frontal - Frontal - Same",
        "Frontal - Quarter Left",
        "Frontal - Half Left",
        "Frontal - Frontal - Diff",
    ]


def test_extra_columns_and_float_distances(fixtures: Path) -> None:
    frame = read_pairs_file(fixtures / "critical_features_critical_distances.csv")
    assert list(frame.columns) == ["img1", "img2", "distance", "napth_name"]
    assert frame["distance"].dtype == np.float64
    assert frame["distance"].iloc[0] == pytest.approx(5.583333333)
    assert frame["napth_name"].tolist() == list(range(1, 16))


def test_unnamed_index_with_human_distances(fixtures: Path) -> None:
    frame = read_pairs_file(fixtures / "israeli_familiar_distances.csv")
    assert list(frame.columns) == ["img1", "img2", "distance"]
    assert frame.iloc[0].tolist() == ["E_F_galit_gutman.png", "E_F_ilanit.png", pytest.approx(4.230769231)]


def test_whitespace_around_names_labels_and_header_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(" img1 , img2 ,cond \na.jpg , b.jpg,Frontal - Half Left \nc.jpg,d.jpg,  same\n")
    frame = read_pairs_file(path)
    assert list(frame.columns) == ["img1", "img2", "cond"]
    assert frame["img1"].tolist() == ["a.jpg", "c.jpg"]
    assert frame["cond"].tolist() == ["Frontal - Half Left", "same"]


def test_tab_separated_with_header_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("\ufeffimg1\timg2\ttruth\na.jpg\tb.jpg\t1\nc.jpg\td.jpg\t0\n", encoding="utf-8")
    frame = read_pairs_file(path)
    assert list(frame.columns) == ["img1", "img2", "truth"]
    assert frame["truth"].tolist() == [1, 0]


def test_headerless_csv_with_extra_column(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("a.jpg,b.jpg,1\nc.jpg,d.jpg,0\n")
    frame = read_pairs_file(path)
    assert list(frame.columns) == ["img1", "img2", "column3"]


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=r"empty\.csv.*is empty"):
        read_pairs_file(path)


def test_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("img1,img2,same\n")
    with pytest.raises(DataError, match=r"header\.csv.*no pairs.*'same'"):
        read_pairs_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_pairs_file(tmp_path / "nope.csv")


def test_missing_column_error_names_file_and_existing_columns(fixtures: Path) -> None:
    frame = read_pairs_file(fixtures / "other_race_same_asian.csv")
    with pytest.raises(DataError) as info:
        require_columns(frame, ["img1", "img2", "truth"], "other_race.csv", {"truth": "label_column"})
    message = str(info.value)
    assert "other_race.csv" in message and "'truth'" in message
    assert "'img1', 'img2', 'same'" in message
    assert "label_column=" in message


def test_binary_labels_accepts_numbers_booleans_and_words() -> None:
    frame = pd.DataFrame(
        {"n": [1, 0, 1], "b": [True, False, True], "w": ["same", "Different", "TRUE"], "f": [1.0, 0.0, 1.0]}
    )
    for column in frame.columns:
        assert binary_labels(frame, column, "x").tolist() == [True, False, True]


@pytest.mark.parametrize(("values", "shown"), [([1, 2, 0], "2"), (["yes", "maybe", "no"], "'maybe'")])
def test_binary_labels_reject_other_values_and_say_where(values: list[object], shown: str) -> None:
    with pytest.raises(DataError, match=rf"'label'.*found {shown} at pair 2 "):
        binary_labels(pd.DataFrame({"label": values}), "label", "pairs.csv")


def test_numeric_column_rejects_text_and_empty_cells() -> None:
    with pytest.raises(DataError, match=r"'distance' must hold numbers; found 'far' at pair 2"):
        numeric_column(pd.DataFrame({"distance": [1.0, "far"]}), "distance", "x")
    with pytest.raises(DataError, match=r"'distance' is empty for pair 1"):
        numeric_column(pd.DataFrame({"distance": [None, 1.0]}), "distance", "x")


def test_text_column_turns_numbers_into_labels() -> None:
    assert text_column(pd.DataFrame({"g": [1, 2]}), "g", "x").tolist() == ["1", "2"]


def test_repeated_pairs_warn_with_their_count_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(
        "img1,img2,same\na.jpg,b.jpg,1\nc.jpg,d.jpg,0\nb.jpg,a.jpg,1\nc.jpg,d.jpg,0\na.jpg,b.jpg,0\n"
    )
    with pytest.warns(
        RepeatedPairsWarning, match=r"pairs.csv: 2 row\(s\) repeat .*values: pairs 3, 4 \(counting"
    ):
        frame = read_pairs_file(path)
    assert len(frame) == 5  # kept: the warning says what they do, the user decides


def test_no_warning_when_the_same_images_differ_in_another_column(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(
        "img1,img2,subject,distance\na.jpg,b.jpg,s1,0.5\na.jpg,b.jpg,s2,0.5\nb.jpg,c.jpg,s1,0.7\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_pairs_file(path)) == 3
