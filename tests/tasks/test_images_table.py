"""Images tables (``--table``) and the embedding-task side of the task contract."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from facebench.errors import ConfigError, DataError
from facebench.pairs import read_table_file
from facebench.task import BaseTask, Need, TaskResult
from facebench.testing import array_view


class MeanNorm(BaseTask):
    """An embedding task: the mean norm of its images' embeddings, read in chunks."""

    pairs_file: ClassVar[Need] = "unused"
    images_table: ClassVar[Need] = "required"
    required_table_columns: ClassVar[tuple[str, ...]] = ("image", "identity")

    def evaluate(self, view) -> TaskResult:
        norms = [np.linalg.norm(block, axis=1) for _, block in view.iter_chunks()]
        return TaskResult(self.result_row({"Mean Norm": float(np.concatenate(norms).mean())}))


def images(folder: Path, names: list[str]) -> Path:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    return folder


def test_tables_are_read_as_labs_write_them(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("a.jpg\nb.jpg\n")
    assert read_table_file(listing)["image"].tolist() == ["a.jpg", "b.jpg"]
    indexed = tmp_path / "indexed.tsv"
    indexed.write_text("\timage\tidentity\tage\n0\t 007.png \t7\t31\n1\t010.png\t10\t44\n")
    frame = read_table_file(indexed)
    assert frame["image"].tolist() == ["007.png", "010.png"]  # names stay text, whitespace stripped
    assert frame["identity"].tolist() == [7, 10] and list(frame.columns) == ["image", "identity", "age"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("image,identity\na.png,1\na.png,2\n", r"each image once.*'a\.png'"),
        ("file,identity\na.png,1\n", r"no column 'image'"),
        ("image,identity\n,1\n", r"'image' is empty"),
        ("image,identity\n", r"no images"),
    ],
)
def test_bad_tables_say_what_and_where(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "table.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_table_file(path)


def test_an_embedding_task_reads_its_table_and_its_view(tmp_path: Path) -> None:
    folder = images(tmp_path / "faces", ["x/b.png", "a.png", "c.png"])
    table = tmp_path / "table.csv"
    pd.DataFrame({"image": ["x/b.png", "a.png", "c.png"], "identity": [1, 1, 2]}).to_csv(table, index=False)
    task = MeanNorm(table_path=table, images_path=folder)
    assert task.name == "table" and task.pairs_df is None
    assert task.image_names() == ["x/b.png", "a.png", "c.png"]  # table order
    assert task.embedded_images() == [folder / "x/b.png", folder / "a.png", folder / "c.png"]
    vectors = np.array([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]])
    result = task.evaluate(array_view(vectors, task.image_names(), chunk_bytes=8))
    assert result.distances is None
    assert result.performance["Mean Norm"].iloc[0] == pytest.approx((5 + 1 + 10) / 3)
    assert task.describe()["table_file"] == str(table) and task.describe()["images"] == 3


def test_table_images_are_checked_up_front(tmp_path: Path) -> None:
    folder = images(tmp_path / "faces", ["a.png"])
    table = tmp_path / "table.csv"
    pd.DataFrame({"image": ["a.png", "b.png", "../c.png"], "identity": [1, 2, 3]}).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"table\.csv: image paths must stay inside.*'\.\./c\.png'"):
        MeanNorm(table_path=table, images_path=folder)
    pd.DataFrame({"image": ["a.png", "b.png", "d.png"], "identity": [1, 2, 3]}).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"2 of 3 images are not in .*'b\.png', 'd\.png'"):
        MeanNorm(table_path=table, images_path=folder)
    pd.DataFrame({"image": ["a.png"]}).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"no column 'identity'"):
        MeanNorm(table_path=table, images_path=folder)


def test_a_task_says_which_inputs_it_reads(tmp_path: Path) -> None:
    folder = images(tmp_path / "faces", ["a.png", "b.png"])
    table = tmp_path / "table.csv"
    pd.DataFrame({"image": ["a.png", "b.png"], "identity": [1, 2]}).to_csv(table, index=False)
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"img1": ["a.png"], "img2": ["b.png"]}).to_csv(pairs, index=False)
    with pytest.raises(ConfigError, match=r"MeanNorm needs table_path"):
        MeanNorm(images_path=folder)
    with pytest.raises(ConfigError, match=r"MeanNorm does not read pairs_file_path"):
        MeanNorm(table_path=table, pairs_file_path=pairs, images_path=folder)

    class Nothing(BaseTask):
        pass

    with pytest.raises(TypeError, match="compute_task_performance or evaluate"):
        Nothing(pairs_file_path=pairs, images_path=folder)
