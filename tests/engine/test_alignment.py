"""``align=mtcnn`` on any model: MTCNN against facenet-pytorch's, templates, the crop cache,
every face-less image listed at once, ``on_no_face=center-crop``."""

from __future__ import annotations

import re
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from facebench import alignment
from facebench.alignment import MTCNN, TEMPLATES, FaceAligner
from facebench.engine import embed_images
from facebench.errors import ConfigError, DataError
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing
from facebench.store import EmbeddingStore

PHOTO = Path(__file__).parents[1] / "fixtures" / "alignment" / "grace_hopper.jpg"

try:
    alignment.mtcnn_weights_dir()
except ConfigError:
    pytest.skip(
        "MTCNN's weight files are not installed (pip install --no-deps facenet-pytorch)",
        allow_module_level=True,
    )


class ArcFaceInput(BaseModel):
    """A tiny network on 112x112 inputs that declares the ArcFace template."""

    alignment_template = "arcface"

    def _build_model(self) -> nn.Module:
        return nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(4), flat=nn.Flatten()))

    def default_preprocessing(self) -> Preprocessing:
        return Preprocessing(resize=(112, 112), crop=None, mean=(0.5,) * 3, std=(0.5,) * 3)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    with Image.open(PHOTO) as image:
        return image.convert("RGB")


@pytest.fixture
def blanks(tmp_path: Path) -> list[Path]:
    paths = []
    for index, colour in enumerate([(120, 130, 140), (30, 30, 30)]):
        path = tmp_path / f"wall_{index}.png"
        Image.new("RGB", (160, 120), colour).save(path)
        paths.append(path)
    return paths


def test_mtcnn_finds_what_facenet_pytorch_finds(photo: Image.Image) -> None:
    reference = pytest.importorskip("facenet_pytorch")
    boxes, probabilities, points = reference.MTCNN(keep_all=True, device="cpu").detect(photo, landmarks=True)
    faces = MTCNN().detect(photo)
    assert len(faces) == len(boxes) == 1
    np.testing.assert_allclose(faces[0].box, np.asarray(boxes[0], dtype=float), atol=0.05)
    np.testing.assert_allclose(faces[0].landmarks, np.asarray(points[0].tolist(), dtype=float), atol=0.05)
    assert faces[0].probability == pytest.approx(float(probabilities[0]), abs=1e-5)


@pytest.mark.parametrize("template", ["arcface", "dlib"])
def test_aligned_face_has_its_landmarks_on_the_template(photo: Image.Image, template: str) -> None:
    aligner, points, size = FaceAligner(template), TEMPLATES[template].points, TEMPLATES[template].size
    landmarks = aligner.landmarks(photo)
    to_crop = alignment.similarity_transform(landmarks, points)
    mapped = landmarks @ to_crop[:, :2].T + to_crop[:, 2]
    assert np.abs(mapped - points).max() < 3.0  # the least-squares fit of five points, in pixels
    crop = aligner.align(photo)
    assert crop.size == (size, size)
    found = aligner.landmarks(crop)  # detected again in the aligned crop: the warp put them there
    assert np.abs(found - points).max() < 0.06 * size


def test_any_model_aligns_and_second_model_reuses_the_crops(
    tmp_path: Path, blanks: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = FaceAligner.face
    monkeypatch.setattr(FaceAligner, "face", lambda self, image: calls.append(1) or original(self, image))
    store = EmbeddingStore(tmp_path / "cache")
    model = ArcFaceInput(device="cpu", align="mtcnn", on_no_face="center-crop")
    plain = ArcFaceInput(device="cpu")
    assert model.identity != plain.identity
    first = embed_images(model, [PHOTO, *blanks], store=store, progress=False, num_workers=0)
    assert len(calls) == 3  # one detection per image
    crops = sorted((tmp_path / "cache" / "aligned").rglob("*.png"))
    assert len(crops) == 1 and crops[0].parent.name.startswith("arcface-")
    with Image.open(crops[0]) as crop:
        expected = plain.get_output(plain.get_preprocess_function()(crop.convert("RGB"))[None])["output"]
    np.testing.assert_allclose(first.vectors("output", [PHOTO]), expected.numpy(), atol=1e-6)
    # a second model with the same template (other options): no detection, face-less ones remembered
    other = ArcFaceInput(device="cpu", align="mtcnn", on_no_face="center-crop", seed=1, name="other")
    embed_images(other, [PHOTO, *blanks], store=store, progress=False, num_workers=0)
    assert len(calls) == 3


def test_every_image_without_a_face_is_listed_at_once(tmp_path: Path, blanks: list[Path]) -> None:
    model = ArcFaceInput(device="cpu", align="mtcnn")
    with pytest.raises(
        DataError, match=r"no face found in 2 image\(s\).*wall_0\.png, .*wall_1\.png.*on_no_face"
    ):
        embed_images(model, [PHOTO, *blanks], store=EmbeddingStore(tmp_path / "c"), progress=False)


def test_center_crop_for_images_without_a_face(blanks: list[Path]) -> None:
    model = ArcFaceInput(device="cpu", align="mtcnn", on_no_face="center-crop")
    assert model.preprocess_image(blanks[0]).shape == (3, 112, 112)
    with pytest.raises(DataError, match="no face found"):
        ArcFaceInput(device="cpu", align="mtcnn").preprocess_image(blanks[1])


def test_missing_weight_files_say_how_to_get_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)
    monkeypatch.setenv(alignment.WEIGHTS_VARIABLE, str(tmp_path))
    with pytest.raises(ConfigError, match=r"pip install --no-deps facenet-pytorch.*FACEBENCH_MTCNN_WEIGHTS"):
        _ = ArcFaceInput(device="cpu", align="mtcnn").identity


def test_networks_load_facenet_pytorch_weight_files_strictly() -> None:
    folder = alignment.mtcnn_weights_dir()
    for network, name in zip(
        (alignment.PNet(), alignment.RNet(), alignment.ONet()), alignment.WEIGHT_FILES, strict=True
    ):
        state = torch.load(folder / name, map_location="cpu", weights_only=True)
        network.load_state_dict(state, strict=True)


@pytest.fixture
def face_pairs(tmp_path: Path, photo: Image.Image, blanks: list[Path]) -> Path:
    """Four views of one face (labels arbitrary), two walls, and pairs using both."""
    folder = blanks[0].parent
    photo.save(folder / "hopper.png")
    photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "flipped.png")
    photo.crop((40, 20, 500, 560)).save(folder / "cropped.png")
    photo.convert("L").convert("RGB").save(folder / "grey.png")
    rows = [
        "img1,img2,same",
        "hopper.png,flipped.png,1",
        "flipped.png,cropped.png,1",
        "hopper.png,cropped.png,0",
        "grey.png,hopper.png,0",
        "hopper.png,wall_0.png,0",
        "wall_0.png,wall_1.png,1",
    ]
    (folder / "pairs.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_a_run_skips_the_pairs_of_face_less_images_or_lists_them(face_pairs: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from facebench.cli import main

    def run(on_no_face: str, output: str) -> tuple[int, str]:
        args = [
            "run",
            "--model",
            f"iresnet:arch=iresnet18,pretrained=false,device=cpu,align=mtcnn,on_no_face={on_no_face}",
        ]
        args += ["--task", "accuracy:label_column=same,n_folds=2", "--pairs", str(face_pairs / "pairs.csv")]
        args += ["--images", str(face_pairs), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
        result = CliRunner().invoke(main, [*args, "--output", str(tmp_path / output)])
        return result.exit_code, result.output

    code, _ = run("skip", "skipped")
    assert code == 0
    distances = list((tmp_path / "skipped" / "distances").rglob("*.csv"))
    import pandas as pd

    kept = pd.read_csv(distances[0])
    assert len(kept) == 4 and not kept[["img1", "img2"]].isin(["wall_0.png", "wall_1.png"]).any().any()
    code, output = run("error", "listed")
    assert code == 1
    assert re.search(r"no face found in 2 image\(s\).*wall_0\.png.*wall_1\.png", output.replace("\n", " "))
