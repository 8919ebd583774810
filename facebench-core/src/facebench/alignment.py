"""Face alignment (``align=mtcnn`` on any model): MTCNN finds the face and five landmarks, and
the photo is warped to the template the model declares.

MTCNN (Zhang et al. 2016) is three small networks — P-Net proposes face windows over an image
pyramid, R-Net refines them, O-Net gives the final box and five landmarks (eye centres, nose
tip, mouth corners). They are written here (module names as in facenet-pytorch, so its
``pnet.pt``/``rnet.pt``/``onet.pt`` state dicts load with ``torch.load(weights_only=True)``);
only the weight FILES are needed. They are found in ``FACEBENCH_MTCNN_WEIGHTS`` (a folder), or
in an installed facenet-pytorch's ``data/`` folder — facenet-pytorch pins an old torch, so
install it WITHOUT its dependencies (``pip install --no-deps facenet-pytorch``); facebench never
imports it, it only reads the three files.

Templates (:data:`TEMPLATES`), chosen by the model's ``alignment_template``:

- ``dlib``: dlib's 150x150 face chip (its mean face, padding 0.25), similarity transform;
- ``arcface``: insightface's 112x112 five-point template, similarity transform;
- ``facenet``: facenet-pytorch's 160x160 box crop with a 14 px margin (no warp);
- ``crop``: the detected box squared and grown by 30% each side, resized to 256 (for
  non-face models; their own preprocessing then resizes and crops).

Aligned crops are cached by a hash of the decoded image, the template and the detector's
weights (PNG files in ``aligned/<template>-<weights>/`` of the embedding cache folder, so
``--cache-dir`` and ``--no-cache`` apply to them too): a second model with the same template
does not detect again, and an image without a face is not searched twice.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor, nn
from torch.nn import functional

from facebench.errors import ConfigError, DataError

logger = logging.getLogger("facebench.alignment")

WEIGHTS_VARIABLE = "FACEBENCH_MTCNN_WEIGHTS"
WEIGHT_FILES = ("pnet.pt", "rnet.pt", "onet.pt")
INSTALL_HINT = (
    "align=mtcnn needs MTCNN's weight files (pnet.pt, rnet.pt, onet.pt). Get them with "
    "`pip install --no-deps facenet-pytorch` (facebench reads its data/ folder and never imports it, "
    f"so its old torch pin does not matter), or set {WEIGHTS_VARIABLE}=<a folder holding the three files>"
)
ON_NO_FACE = ("error", "skip", "center-crop")
NO_FACE = "no face found in"  # how the error about face-less images begins
ALIGNED_FOLDER = "aligned"  # in the embedding cache folder: <template>/<image digest>.png


# ------------------------------------------------------------------------------- the networks
class PNet(nn.Module):
    """Proposal network: a fully convolutional 12x12 face / box-offset detector."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.softmax4_1 = nn.Conv2d(32, 2, 1), nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """Refinement network on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.softmax5_1 = nn.Linear(128, 2), nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))  # Caffe's (W, H, C) order
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """Output network on 48x48 crops: face probability, box offsets, five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).flatten(1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def mtcnn_weights_dir() -> Path:
    """The folder holding MTCNN's three weight files (see the module doc), or ConfigError."""
    configured = os.environ.get(WEIGHTS_VARIABLE)
    candidates = [Path(configured).expanduser()] if configured else []
    try:
        spec = importlib.util.find_spec("facenet_pytorch")  # finds the package without importing it
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "data")
    for folder in candidates:
        if all((folder / name).is_file() for name in WEIGHT_FILES):
            return folder
    where = f" (looked in {', '.join(map(str, candidates))})" if candidates else ""
    raise ConfigError(f"{INSTALL_HINT}{where}")


# ------------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class Face:
    """One detected face: box ``(x1, y1, x2, y2)``, probability, landmarks (5x2 pixels)."""

    box: np.ndarray
    probability: float
    landmarks: np.ndarray


class MTCNN:
    """MTCNN face detection on the CPU (minimum face 20 px, scale step 0.709, thresholds 0.6/0.7/0.7)."""

    min_face = 20
    scale_factor = 0.709
    thresholds = (0.6, 0.7, 0.7)

    def __init__(self, weights_dir: Path | None = None) -> None:
        folder = weights_dir or mtcnn_weights_dir()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for network, name in zip((self.pnet, self.rnet, self.onet), WEIGHT_FILES, strict=True):
            network.load_state_dict(torch.load(folder / name, map_location="cpu", weights_only=True))
            network.eval().requires_grad_(False)

    @torch.inference_mode()
    def detect(self, image: Image.Image) -> list[Face]:
        """Every face in ``image`` (RGB), most probable first."""
        from torchvision.ops import nms

        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32).copy())
        img = pixels.permute(2, 0, 1)[None]
        height, width = img.shape[2:]
        # stage 1: P-Net over an image pyramid
        scale, side, found = 12 / self.min_face, min(height, width) * 12 / self.min_face, []
        while side >= 12:
            size = (int(height * scale + 1), int(width * scale + 1))
            offsets, probs = self.pnet(_normalise(functional.interpolate(img, size=size, mode="area")))
            boxes = _proposals(offsets[0], probs[0, 1], scale, self.thresholds[0])
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
            scale, side = scale * self.scale_factor, side * self.scale_factor
        boxes = torch.cat(found) if found else torch.zeros(0, 9)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        boxes = _square(_regress(boxes[:, :4], boxes[:, 5:9], plus_one=False))
        # stage 2: R-Net on 24x24 crops
        crops, boxes = _crops(img, boxes, 24)
        if len(boxes) == 0:
            return []
        offsets, probs = self.rnet(_normalise(crops))
        keep = probs[:, 1] > self.thresholds[1]
        boxes, scores, offsets = boxes[keep], probs[keep, 1], offsets[keep]
        keep = nms(boxes, scores, 0.7)
        boxes = _square(_regress(boxes[keep], offsets[keep]))
        # stage 3: O-Net on 48x48 crops
        crops, boxes = _crops(img, boxes, 48)
        if len(boxes) == 0:
            return []
        offsets, points, probs = self.onet(_normalise(crops))
        keep = probs[:, 1] > self.thresholds[2]
        boxes, scores, offsets, points = boxes[keep], probs[keep, 1], offsets[keep], points[keep]
        w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        xs = w[:, None] * points[:, :5] + boxes[:, :1] - 1
        ys = h[:, None] * points[:, 5:] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, offsets)
        keep = nms(boxes, scores, 0.7)
        return [
            Face(
                boxes[i].numpy().astype(np.float64), float(scores[i]), torch.stack([xs[i], ys[i]], 1).numpy()
            )
            for i in keep.tolist()
        ]


def _normalise(pixels: Tensor) -> Tensor:
    return (pixels - 127.5) * 0.0078125


def _proposals(offsets: Tensor, probs: Tensor, scale: float, threshold: float) -> Tensor:
    """P-Net's windows scoring >= threshold: ``(n, 9)`` = box, score, box offsets."""
    ys, xs = torch.nonzero(probs >= threshold, as_tuple=True)
    corner = torch.stack([xs, ys], 1).float()
    first, second = ((2 * corner + 1) / scale).floor(), ((2 * corner + 12) / scale).floor()
    return torch.cat([first, second, probs[ys, xs, None], offsets[:, ys, xs].T], 1)


def _regress(boxes: Tensor, offsets: Tensor, plus_one: bool = True) -> Tensor:
    extra = 1 if plus_one else 0
    w, h = boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra
    return boxes + offsets * torch.stack([w, h, w, h], 1)


def _square(boxes: Tensor) -> Tensor:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1, y1 = boxes[:, 0] + (w - side) / 2, boxes[:, 1] + (h - side) / 2
    return torch.stack([x1, y1, x1 + side, y1 + side], 1)


def _crops(img: Tensor, boxes: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Each box cut from ``img`` (clipped to it) and resized to ``size``; boxes without pixels dropped."""
    height, width = img.shape[2:]
    crops, kept = [], []
    for box in boxes:
        x1, y1 = max(int(box[0]), 1), max(int(box[1]), 1)
        x2, y2 = min(int(box[2]), width), min(int(box[3]), height)
        if x2 - x1 + 1 < 1 or y2 - y1 + 1 < 1:
            continue
        crop = img[:, :, y1 - 1 : y2, x1 - 1 : x2]
        crops.append(functional.interpolate(crop, size=(size, size), mode="area"))
        kept.append(box)
    if not crops:
        return torch.zeros(0, 3, size, size), torch.zeros(0, 4)
    return torch.cat(crops), torch.stack(kept)


# ------------------------------------------------------------------------------- templates
# dlib's mean face shape (0-1 coordinates): points 36-41 and 42-47 around the eyes, the nose
# tip (30) and the mouth corners (48, 54), as in dlib's get_face_chip_details
_DLIB_LEFT_EYE = np.array(
    [[0.121737, 0.216423], [0.187122, 0.178758], [0.265825, 0.179852],
     [0.334606, 0.231733], [0.260918, 0.245099], [0.182743, 0.244077]]
)  # fmt: skip
_DLIB_RIGHT_EYE = np.array(
    [[0.645647, 0.231733], [0.714428, 0.179852], [0.793132, 0.178758],
     [0.858516, 0.216423], [0.79751, 0.244077], [0.719335, 0.245099]]
)  # fmt: skip
DLIB_MEAN_FACE = np.stack(
    [
        _DLIB_LEFT_EYE.mean(axis=0),
        _DLIB_RIGHT_EYE.mean(axis=0),
        np.array([0.490127, 0.515625]),
        np.array([0.254149, 0.780233]),
        np.array([0.726104, 0.780233]),
    ]
)
"""Eye centres, nose tip, mouth corners (image left first), in dlib's 0-1 mean-face frame."""
# insightface's ArcFace template for 112x112 crops (eyes, nose tip, mouth corners)
ARCFACE_POINTS = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


def dlib_template(size: int = 150, padding: float = 0.25) -> np.ndarray:
    """The five landmark positions, in pixels, of a ``size`` dlib chip with ``padding``."""
    return (padding + DLIB_MEAN_FACE) / (2 * padding + 1) * size


@dataclass(frozen=True)
class Template:
    """Where an aligned face goes: five landmark positions (a warp) or a box crop with margin."""

    name: str
    size: int
    points: np.ndarray | None = None  # landmarks in pixels: similarity-transform warp
    margin: float = 0.0  # box crop: pixels (facenet) or, below 1, a fraction of the box per side

    def apply(self, image: Image.Image, face: Face) -> Image.Image:
        if self.points is not None:
            return warp(image, face.landmarks, self.points, self.size)
        x1, y1, x2, y2 = face.box
        if self.margin < 1:  # grow a square box by a fraction per side
            side = max(x2 - x1, y2 - y1) * (1 + 2 * self.margin)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        else:  # facenet-pytorch's extract_face: margin in output pixels
            mx = self.margin * (x2 - x1) / (self.size - self.margin)
            my = self.margin * (y2 - y1) / (self.size - self.margin)
            box = (x1 - mx / 2, y1 - my / 2, x2 + mx / 2, y2 + my / 2)
        clipped = (max(box[0], 0), max(box[1], 0), min(box[2], image.width), min(box[3], image.height))
        return image.crop(tuple(int(v) for v in clipped)).resize(
            (self.size, self.size), Image.Resampling.BILINEAR
        )


TEMPLATES: dict[str, Template] = {
    "dlib": Template("dlib", 150, points=dlib_template()),
    "arcface": Template("arcface", 112, points=ARCFACE_POINTS),
    "facenet": Template("facenet", 160, margin=14),
    "crop": Template("crop", 256, margin=0.3),
}


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 matrix ``[sR | t]`` minimising ``sum ||s R source_i + t - target_i||^2`` (Umeyama 1991)."""
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    u, singular_values, vt = np.linalg.svd(target_centred.T @ source_centred / len(source))
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection: flip the weakest axis
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular_values) @ sign) / ((source_centred**2).sum() / len(source)))
    return np.hstack([scale * rotation, (target_mean - scale * rotation @ source_mean)[:, None]])


def warp(image: Image.Image, landmarks: np.ndarray, points: np.ndarray, size: int) -> Image.Image:
    """Resample ``image`` so ``landmarks`` (5x2, pixel centres at integers) land on ``points``."""
    crop_to_image = similarity_transform(points, landmarks)
    linear, offset = crop_to_image[:, :2], crop_to_image[:, 2]
    offset = offset + 0.5 - linear @ np.array([0.5, 0.5])  # PIL samples at pixel centres x + 0.5
    coefficients = (*linear[0], offset[0], *linear[1], offset[1])
    return image.transform((size, size), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)


# ------------------------------------------------------------------------------- aligning
class FaceAligner:
    """The largest face of a photo (MTCNN probability >= ``min_probability``), aligned to a template."""

    def __init__(self, template: str = "dlib", min_probability: float = 0.9) -> None:
        if template not in TEMPLATES:
            raise ConfigError(f"unknown alignment template {template!r}; use one of {', '.join(TEMPLATES)}")
        self.template = TEMPLATES[template]
        self.min_probability = min_probability

    @cached_property
    def detector(self) -> MTCNN:
        return MTCNN()

    def face(self, image: Image.Image) -> Face | None:
        """The largest face of ``image`` above the probability, or None."""
        faces = [f for f in self.detector.detect(image) if f.probability >= self.min_probability]
        if not faces:
            return None
        return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))

    def landmarks(self, image: Image.Image, source: str = "the image") -> np.ndarray:
        """The five landmarks (5x2 pixels) of the largest face, or a DataError naming ``source``."""
        face = self.face(image.convert("RGB"))
        if face is None:
            raise DataError(no_face_message([source], self.min_probability))
        return face.landmarks

    def align(self, image: Image.Image, source: str = "the image") -> Image.Image:
        """The largest face of ``image`` aligned to the template, or a DataError naming ``source``."""
        image = image.convert("RGB")
        face = self.face(image)
        if face is None:
            raise DataError(no_face_message([source], self.min_probability))
        return self.template.apply(image, face)


def no_face_message(sources: Sequence[str], min_probability: float, on_no_face: str = "error") -> str:
    """The error listing every image without a face, and what to do."""
    listed = ", ".join(map(str, sources))
    if on_no_face == "skip":
        advice = "on_no_face=skip: a run leaves out the pairs (and table rows) that use them"
    else:
        advice = (
            "remove them from the pairs file, or pass on_no_face=skip (leave out their pairs) or "
            "on_no_face=center-crop, or give aligned crops without align"
        )
    return f"{NO_FACE} {len(sources)} image(s) (MTCNN, probability >= {min_probability}): {listed}; {advice}"


class AlignStep:
    """The PIL -> PIL image step of ``align=mtcnn``: aligned crops cached by content hash and template.

    :meth:`prepare` aligns a whole set of files first and lists EVERY face-less one at once in a
    DataError (``on_no_face=error``, and ``skip``, for which a run then leaves out their pairs:
    :meth:`facebench.model.BaseModel.skipped_images`); ``center-crop`` uses a centre square crop
    for them instead.
    """

    def __init__(self, template: str, on_no_face: str = "error", cache_dir: Path | None = None) -> None:
        if on_no_face not in ON_NO_FACE:
            raise ConfigError(f"on_no_face must be one of {', '.join(ON_NO_FACE)}, not {on_no_face!r}")
        self.aligner = FaceAligner(template)
        self.on_no_face = on_no_face
        self.cache_dir = cache_dir or default_crop_dir()

    @cached_property
    def weights_digest(self) -> str:
        """The first 12 hex digits of the sha256 of MTCNN's three weight files (ConfigError if missing)."""
        folder = mtcnn_weights_dir()
        digest = hashlib.sha256()
        for name in WEIGHT_FILES:
            digest.update((folder / name).read_bytes())
        return digest.hexdigest()[:12]

    @property
    def preprocess_id(self) -> str:
        template = self.aligner.template
        return (
            f"align:mtcnn@{self.weights_digest},template={template.name},size={template.size},"
            f"on_no_face={self.on_no_face}"
        )

    def _cached(self, image: Image.Image) -> Path:
        """Where ``image``'s aligned crop is kept (``.png``; a ``.noface`` file beside it: none found)."""
        folder = f"{self.aligner.template.name}-{self.weights_digest}"
        return self.cache_dir / folder / f"{pixels_digest(image)}.png"

    def prepare(self, paths: Sequence[str | Path], cache_dir: Path | None = None) -> None:
        """Align every image of ``paths`` not yet cached (crops kept in ``cache_dir`` from now on,
        when given); a DataError listing ALL face-less ones (``on_no_face=error``)."""
        from facebench.images import load_rgb

        if cache_dir is not None:
            self.cache_dir = cache_dir
        missing = [str(path) for path in paths if self._aligned(load_rgb(path)) is None]
        if missing and self.on_no_face != "center-crop":
            raise DataError(no_face_message(missing, self.aligner.min_probability, self.on_no_face))

    def _aligned(self, image: Image.Image) -> Image.Image | None:
        """``image``'s aligned face from the cache, or detected now and cached; None: no face."""
        target = self._cached(image)
        if target.is_file():
            with Image.open(target) as crop:
                return crop.convert("RGB")
        no_face = target.with_suffix(".noface")
        if no_face.is_file():
            return None
        face = self.aligner.face(image)
        target.parent.mkdir(parents=True, exist_ok=True)
        if face is None:
            no_face.touch()
            return None
        crop = self.aligner.template.apply(image, face)
        partial = target.with_name(f"{target.stem}.{os.getpid()}.tmp.png")
        crop.save(partial)
        os.replace(partial, target)  # atomic: a parallel worker never reads half a file
        return crop

    def __call__(self, image: Image.Image) -> Image.Image:
        image = image.convert("RGB")
        crop = self._aligned(image)
        if crop is not None:
            return crop
        if self.on_no_face == "center-crop":
            size = self.aligner.template.size
            return ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
        source = getattr(image, "filename", "") or f"a {image.width}x{image.height} image"
        raise DataError(no_face_message([source], self.aligner.min_probability, self.on_no_face))

    def __repr__(self) -> str:
        return self.preprocess_id


def pixels_digest(image: Image.Image) -> str:
    """A 32-hex-digit BLAKE2b digest of an image's size, mode and pixels."""
    digest = hashlib.blake2b(f"{image.size}{image.mode}".encode(), digest_size=16)
    digest.update(image.tobytes())
    return digest.hexdigest()


def default_crop_dir() -> Path:
    """``aligned/`` in the default embedding cache folder (:func:`facebench.store.default_cache_dir`)."""
    from facebench.store import default_cache_dir

    return default_cache_dir() / ALIGNED_FOLDER
