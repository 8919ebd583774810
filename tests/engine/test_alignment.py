"""``align=mtcnn`` on any model: the shipped weights, MTCNN against facenet-pytorch's, batched
detection against one image at a time, templates, the crop cache and its progress bar, every
face-less image listed at once, ``on_no_face=center-crop``, ``facebench align --sheet``, and
``align=true`` as a synonym."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from facebench import alignment, contact_sheet
from facebench.alignment import MTCNN, TEMPLATES, AlignStep, FaceAligner
from facebench.engine import embed_images
from facebench.errors import ConfigError, DataError
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing
from facebench.store import EmbeddingStore

PHOTO = Path(__file__).parents[1] / "fixtures" / "alignment" / "grace_hopper.jpg"


def facenet_pytorch_data() -> Path:
    """facenet-pytorch's folder of MTCNN ``.pt`` files (the test is skipped without it)."""
    reference = pytest.importorskip("facenet_pytorch")
    return Path(reference.__file__).parent / "data"


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
    detected: list[int] = []
    original = MTCNN.detect_batch
    monkeypatch.setattr(
        MTCNN, "detect_batch", lambda self, images: detected.append(len(images)) or original(self, images)
    )
    store = EmbeddingStore(tmp_path / "cache")
    model = ArcFaceInput(device="cpu", align="mtcnn", on_no_face="center-crop")
    plain = ArcFaceInput(device="cpu")
    assert model.identity != plain.identity
    first = embed_images(model, [PHOTO, *blanks], store=store, progress=False, num_workers=0)
    assert sum(detected) == 3  # one detection per image
    crops = sorted((tmp_path / "cache" / "aligned").rglob("*.png"))
    assert len(crops) == 1 and crops[0].parent.name.startswith("arcface-")
    with Image.open(crops[0]) as crop:
        expected = plain.get_output(plain.get_preprocess_function()(crop.convert("RGB"))[None])["output"]
    np.testing.assert_allclose(first.vectors("output", [PHOTO]), expected.numpy(), atol=1e-6)
    # a second model with the same template (other options): no detection, face-less ones remembered
    other = ArcFaceInput(device="cpu", align="mtcnn", on_no_face="center-crop", seed=1, name="other")
    embed_images(other, [PHOTO, *blanks], store=store, progress=False, num_workers=0)
    assert sum(detected) == 3


def test_progress_bar_counts_the_cached_crops(
    tmp_path: Path, blanks: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    step = AlignStep("arcface", on_no_face="skip", cache_dir=tmp_path / "crops")
    first = step.align_files([PHOTO, *blanks], progress=True)
    assert "3/3" in capsys.readouterr().err
    assert first[str(PHOTO)] is not None and first[str(blanks[0])] is None
    again = step.align_files([PHOTO, *blanks], progress=True)
    assert again == first
    assert re.search(r"3/3.*cached=3, no_face=2", capsys.readouterr().err)


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


def test_shipped_weights_load_strictly_and_equal_facenet_pytorchs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(alignment.WEIGHTS_VARIABLE, raising=False)
    assert alignment.mtcnn_weights_path() == alignment.SHIPPED_WEIGHTS
    assert alignment.SHIPPED_WEIGHTS.stat().st_size < 2_000_000
    shipped = alignment.load_mtcnn_weights()
    for name, network in alignment.NETWORKS.items():
        network().load_state_dict(shipped[name], strict=True)
    folder = facenet_pytorch_data()
    for name in alignment.NETWORKS:
        original = torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True)
        assert original.keys() == shipped[name].keys()
        assert all(torch.equal(original[key], shipped[name][key]) for key in original)
    # the override reads facenet-pytorch's files; the same weights give the same cache identity
    monkeypatch.setenv(alignment.WEIGHTS_VARIABLE, str(folder))
    assert alignment.mtcnn_weights_path() == folder
    assert alignment.weights_digest(alignment.load_mtcnn_weights()) == alignment.weights_digest(shipped)


def test_a_weights_override_without_weights_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(alignment.WEIGHTS_VARIABLE, str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"FACEBENCH_MTCNN_WEIGHTS=.* holds no MTCNN weights.*mtcnn\.safetensors"
    ):
        _ = ArcFaceInput(device="cpu", align="mtcnn").identity


def test_batched_detection_equals_one_image_at_a_time(photo: Image.Image) -> None:
    wall = Image.new("RGB", photo.size, (120, 130, 140))
    turned = [photo.rotate(angle, Image.Resampling.BILINEAR) for angle in (-8, 0, 8)]
    images = [*turned, wall, photo.resize((250, 293)), photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    detector = MTCNN()
    batched = detector.detect_batch(images)
    for image, faces in zip(images, batched, strict=True):
        alone = detector.detect(image)
        assert len(faces) == len(alone)
        for face, single in zip(faces, alone, strict=True):
            np.testing.assert_allclose(face.landmarks, single.landmarks, atol=1e-3)
            np.testing.assert_allclose(face.box, single.box, atol=1e-3)
            assert face.probability == pytest.approx(single.probability, abs=1e-5)
    assert [len(faces) for faces in batched] == [1, 1, 1, 0, 1, 1]


def test_large_photos_are_downscaled_and_their_landmarks_mapped_back(photo: Image.Image) -> None:
    detector = MTCNN()
    large = photo.resize((photo.width * 3, photo.height * 3), Image.Resampling.BICUBIC)  # 1536x1800
    assert max(large.size) > detector.max_side
    (face,) = detector.detect(large)
    (small,) = detector.detect(photo)
    eye_distance = np.linalg.norm(small.landmarks[1] - small.landmarks[0])
    # the same face, in the large photo's pixels (centres at integers: x_large = 3 x + 1)
    assert np.abs(face.landmarks - (3 * small.landmarks + 1)).max() < 0.05 * 3 * eye_distance


def test_align_true_and_align_mtcnn_are_one_option() -> None:
    from facebench.registry import get_registry

    def vgg16(align: object) -> BaseModel:
        return get_registry().create("model", "vgg16", pretrained="false", device="cpu", align=align)

    aligned = {vgg16(spelling).identity for spelling in ("mtcnn", "true", True, "yes")}
    assert len(aligned) == 1
    assert vgg16("false").align == vgg16("none").align == "none"
    assert vgg16("none").identity not in aligned
    with pytest.raises(ConfigError, match="align"):
        vgg16("dlib")


def test_align_command_writes_a_contact_sheet_by_image_name(tmp_path: Path, blanks: list[Path]) -> None:
    from click.testing import CliRunner

    from facebench.cli import main

    folder = blanks[0].parent
    (folder / "people").mkdir()
    (folder / "people" / "hopper.jpg").write_bytes(PHOTO.read_bytes())
    sheet = tmp_path / "sheet.png"
    args = ["align", str(folder), "--template", "arcface", "--sheet", str(sheet)]
    result = CliRunner().invoke(main, [*args, "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Aligned 1 of 3 images" in result.output and "wall_0.png, wall_1.png" in result.output
    (crop,) = (tmp_path / "cache" / "aligned").rglob("*.png")
    with Image.open(sheet) as written:
        pixels = np.asarray(written.convert("RGB"), dtype=float)
    cell, caption = contact_sheet.CELL, contact_sheet.CAPTION
    assert pixels.shape == (cell + caption, 3 * cell, 3)  # names sorted: people/hopper.jpg first
    with Image.open(crop) as face:
        expected = np.asarray(
            face.convert("RGB").resize((cell, cell), Image.Resampling.BILINEAR), dtype=float
        )
    np.testing.assert_array_equal(pixels[:cell, :cell], expected)
    assert (pixels[5, cell + 5] == 200).all()  # the face-less ones: grey cells
    assert pixels[cell:, :cell].min() < 100  # a caption under the face


def test_contact_sheets_hold_every_image(tmp_path: Path) -> None:
    crops = [(f"image_{index}.png", None) for index in range(5)]
    paths = contact_sheet.write_contact_sheets(crops, tmp_path / "sheet.png", per_sheet=2)
    assert [path.name for path in paths] == ["sheet.png", "sheet-2.png", "sheet-3.png"]
    assert all(path.is_file() for path in paths)


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
