"""Face alignment (``align=mtcnn`` on any model): MTCNN finds the face and five landmarks, and
the photo is warped to the template the model declares.

MTCNN (Zhang et al. 2016) is three small networks — P-Net proposes face windows over an image
pyramid, R-Net refines them, O-Net gives the final box and five landmarks (eye centres, nose
tip, mouth corners). They are written here (module names as in facenet-pytorch); their weights
ship with facebench-core as ``weights/mtcnn.safetensors`` (converted from facenet-pytorch's by
``facebench-core/scripts/convert_mtcnn_weights.py``; origin and license in
THIRD_PARTY_LICENSES.md). ``FACEBENCH_MTCNN_WEIGHTS`` overrides them: a ``.safetensors`` file, or
a folder holding one or facenet-pytorch's ``pnet.pt``/``rnet.pt``/``onet.pt``.

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
INSTALL_HINT = (
    f"set {WEIGHTS_VARIABLE} to a mtcnn.safetensors file, or to a folder holding it or "
    "facenet-pytorch's pnet.pt, rnet.pt and onet.pt (unset it to use the weights shipped with facebench-core)"
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


NETWORKS: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}
WEIGHTS_FILE = "mtcnn.safetensors"
SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / WEIGHTS_FILE
"""MTCNN's weights, shipped with facebench-core (``scripts/convert_mtcnn_weights.py`` made them)."""


def mtcnn_weights_path() -> Path:
    """``FACEBENCH_MTCNN_WEIGHTS`` (a ``.safetensors`` file, or a folder holding ``mtcnn.safetensors``
    or facenet-pytorch's ``pnet.pt``, ``rnet.pt``, ``onet.pt``), else the shipped file."""
    configured = os.environ.get(WEIGHTS_VARIABLE)
    if not configured:
        if not SHIPPED_WEIGHTS.is_file():
            raise ConfigError(f"{SHIPPED_WEIGHTS} is missing: reinstall facebench-core, or {INSTALL_HINT}")
        return SHIPPED_WEIGHTS
    path = Path(configured).expanduser()
    if path.is_file() and path.suffix == ".safetensors":
        return path
    if (path / WEIGHTS_FILE).is_file():
        return path / WEIGHTS_FILE
    if all((path / f"{name}.pt").is_file() for name in NETWORKS):
        return path
    raise ConfigError(f"{WEIGHTS_VARIABLE}={configured} holds no MTCNN weights: {INSTALL_HINT}")


def load_mtcnn_weights(path: Path | None = None) -> dict[str, dict[str, Tensor]]:
    """The three networks' state dicts (``pnet``, ``rnet``, ``onet``) from ``path`` (default:
    :func:`mtcnn_weights_path`); facenet-pytorch's ``.pt`` files load with ``weights_only=True``."""
    path = path or mtcnn_weights_path()
    if path.is_dir():
        return {
            name: torch.load(path / f"{name}.pt", map_location="cpu", weights_only=True) for name in NETWORKS
        }
    from safetensors.torch import load_file

    states: dict[str, dict[str, Tensor]] = {name: {} for name in NETWORKS}
    for key, value in load_file(path).items():
        network, _, parameter = key.partition(".")
        if network not in states:
            raise ConfigError(f"{path}: tensor {key!r} belongs to none of {', '.join(NETWORKS)}")
        states[network][parameter] = value
    return states


def weights_digest(states: dict[str, dict[str, Tensor]]) -> str:
    """The first 12 hex digits of a sha256 of every tensor's name, dtype, shape and values: the
    same weights give the same digest whichever file they came from."""
    digest = hashlib.sha256()
    for network in NETWORKS:
        for name, value in sorted(states[network].items()):
            digest.update(f"{network}.{name}:{value.dtype}:{tuple(value.shape)}".encode())
            digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


# ------------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class Face:
    """One detected face: box ``(x1, y1, x2, y2)``, probability, landmarks (5x2 pixels)."""

    box: np.ndarray
    probability: float
    landmarks: np.ndarray

    def scaled(self, fx: float, fy: float) -> Face:
        """This face in an image ``fx`` (``fy``) times wider (taller), pixel centres at integers."""
        factor, shift = np.array([fx, fy]), np.array([fx, fy]) / 2 - 0.5
        return Face(
            np.tile(factor, 2) * self.box + np.tile(shift, 2),
            self.probability,
            factor * self.landmarks + shift,
        )


class MTCNN:
    """MTCNN face detection (minimum face 20 px, scale step 0.709, thresholds 0.6/0.7/0.7).

    Photos longer than :attr:`max_side` are downscaled (box filter) before detection and the
    faces mapped back; photos of one size go through the three networks together."""

    min_face = 20
    scale_factor = 0.709
    thresholds = (0.6, 0.7, 0.7)
    max_side = 1024
    batch_size = 32

    def __init__(self, weights: Path | None = None, device: str | torch.device = "cpu") -> None:
        states = load_mtcnn_weights(weights)
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = (self._network(name, states[name]) for name in NETWORKS)

    def _network(self, name: str, state: dict[str, Tensor]) -> nn.Module:
        network = NETWORKS[name]()
        network.load_state_dict(state, strict=True)
        return network.eval().requires_grad_(False).to(self.device, memory_format=torch.channels_last)

    def detect(self, image: Image.Image) -> list[Face]:
        """Every face in ``image``, most probable first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[Image.Image]) -> list[list[Face]]:
        """Every face in each of ``images`` (most probable first), photos of one size batched."""
        small = [_downscaled(image.convert("RGB"), self.max_side) for image in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(small):
            groups.setdefault(image.size, []).append(index)
        found: list[list[Face]] = [[] for _ in images]
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                pixels = np.stack([np.asarray(small[i], dtype=np.float32) for i in chunk])
                stack = torch.from_numpy(pixels).to(self.device)
                for index, faces in zip(chunk, self._detect_stack(stack), strict=True):
                    fx, fy = (
                        images[index].width / small[index].width,
                        images[index].height / small[index].height,
                    )
                    found[index] = faces if (fx, fy) == (1, 1) else [face.scaled(fx, fy) for face in faces]
        return found

    @torch.inference_mode()
    def _detect_stack(self, pixels: Tensor) -> list[list[Face]]:
        """The faces of each image of a ``(B, H, W, 3)`` stack of 0-255 RGB values."""
        from torchvision.ops import batched_nms

        img = pixels.permute(0, 3, 1, 2)
        count, _, height, width = img.shape
        # stage 1: P-Net over an image pyramid
        scale, side = 12 / self.min_face, min(height, width) * 12 / self.min_face
        found, owners = [img.new_zeros(0, 9)], [torch.zeros(0, dtype=torch.long, device=img.device)]
        while side >= 12:
            size = (int(height * scale + 1), int(width * scale + 1))
            offsets, probs = self.pnet(_normalise(functional.interpolate(img, size=size, mode="area")))
            boxes, owner = _proposals(offsets, probs[:, 1], scale, self.thresholds[0])
            keep = batched_nms(boxes[:, :4], boxes[:, 4], owner, 0.5)
            found.append(boxes[keep])
            owners.append(owner[keep])
            scale, side = scale * self.scale_factor, side * self.scale_factor
        boxes, owner = torch.cat(found), torch.cat(owners)
        keep = batched_nms(boxes[:, :4], boxes[:, 4], owner, 0.7)
        boxes, owner = _square(_regress(boxes[keep, :4], boxes[keep, 5:9], plus_one=False)), owner[keep]
        # stage 2: R-Net on 24x24 crops
        integral = _integral(img)
        crops, boxes, owner = _crops(integral, boxes, owner, 24)
        offsets, probs = self.rnet(_normalise(crops))
        keep = probs[:, 1] > self.thresholds[1]
        boxes, scores, offsets, owner = boxes[keep], probs[keep, 1], offsets[keep], owner[keep]
        keep = batched_nms(boxes, scores, owner, 0.7)
        boxes, owner = _square(_regress(boxes[keep], offsets[keep])), owner[keep]
        # stage 3: O-Net on 48x48 crops
        crops, boxes, owner = _crops(integral, boxes, owner, 48)
        offsets, points, probs = self.onet(_normalise(crops))
        keep = probs[:, 1] > self.thresholds[2]
        boxes, scores, offsets, points, owner = (
            boxes[keep],
            probs[keep, 1],
            offsets[keep],
            points[keep],
            owner[keep],
        )
        w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        xs = w[:, None] * points[:, :5] + boxes[:, :1] - 1
        ys = h[:, None] * points[:, 5:] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, offsets)
        keep = batched_nms(boxes, scores, owner, 0.7)  # most probable first
        boxes, scores, xs, ys, owner = (t[keep].cpu() for t in (boxes, scores, xs, ys, owner))
        faces: list[list[Face]] = [[] for _ in range(count)]
        for i in range(len(keep)):
            landmarks = torch.stack([xs[i], ys[i]], 1).numpy()
            faces[int(owner[i])].append(
                Face(boxes[i].numpy().astype(np.float64), float(scores[i]), landmarks)
            )
        return faces


def _downscaled(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` with its longer side at most ``max_side`` (box filter), or itself."""
    longer = max(image.size)
    if longer <= max_side:
        return image
    size = (max(1, round(image.width * max_side / longer)), max(1, round(image.height * max_side / longer)))
    return image.resize(size, Image.Resampling.BOX)


def _normalise(pixels: Tensor) -> Tensor:
    """MTCNN's input scaling, channels last (the faster layout for its thin convolutions on CPUs)."""
    return ((pixels - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


def _proposals(offsets: Tensor, probs: Tensor, scale: float, threshold: float) -> tuple[Tensor, Tensor]:
    """P-Net's windows scoring >= threshold: ``(n, 9)`` = box, score, box offsets; and their images."""
    owner, ys, xs = torch.nonzero(probs >= threshold, as_tuple=True)
    corner = torch.stack([xs, ys], 1).float()
    first, second = ((2 * corner + 1) / scale).floor(), ((2 * corner + 12) / scale).floor()
    boxes = torch.cat([first, second, probs[owner, ys, xs, None], offsets[owner, :, ys, xs]], 1)
    return boxes, owner


def _regress(boxes: Tensor, offsets: Tensor, plus_one: bool = True) -> Tensor:
    extra = 1 if plus_one else 0
    w, h = boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra
    return boxes + offsets * torch.stack([w, h, w, h], 1)


def _square(boxes: Tensor) -> Tensor:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1, y1 = boxes[:, 0] + (w - side) / 2, boxes[:, 1] + (h - side) / 2
    return torch.stack([x1, y1, x1 + side, y1 + side], 1)


def _integral(img: Tensor) -> Tensor:
    """``(B, H + 1, W + 1, C)`` float64 sums of ``img`` (B, C, H, W) above and left of each corner."""
    summed = img.permute(0, 2, 3, 1).double().cumsum(1).cumsum(2)
    return functional.pad(summed, (0, 0, 1, 0, 1, 0))


def _crops(integral: Tensor, boxes: Tensor, owner: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Each box cut from its image (clipped to it) and area-resized to ``size`` — the values of
    ``interpolate(crop, mode="area")``, all boxes at once from the integral image; boxes without
    pixels dropped. Returns the crops, the boxes and their images."""
    height, width = integral.shape[1] - 1, integral.shape[2] - 1
    x1, y1 = boxes[:, 0].trunc().long().clamp(min=1), boxes[:, 1].trunc().long().clamp(min=1)
    x2, y2 = boxes[:, 2].trunc().long().clamp(max=width), boxes[:, 3].trunc().long().clamp(max=height)
    keep = (x2 >= x1) & (y2 >= y1)
    x1, y1, x2, y2, boxes, owner = x1[keep], y1[keep], x2[keep], y2[keep], boxes[keep], owner[keep]
    steps = torch.arange(size, device=boxes.device)

    def bins(first: Tensor, last: Tensor) -> tuple[Tensor, Tensor]:  # adaptive pooling's bins
        extent = (last - first + 1)[:, None]
        start = first[:, None] - 1 + steps * extent // size
        end = first[:, None] - 1 + ((steps + 1) * extent + size - 1) // size
        return start, end

    (r0, r1), (c0, c1) = bins(y1, y2), bins(x1, x2)
    image = owner[:, None, None]

    def corner(rows: Tensor, columns: Tensor) -> Tensor:
        return integral[image, rows[:, :, None], columns[:, None, :]]

    sums = corner(r1, c1) - corner(r0, c1) - corner(r1, c0) + corner(r0, c0)
    area = ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :])[..., None]
    return (sums / area).float().permute(0, 3, 1, 2).contiguous(), boxes, owner


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
        return self.faces([image])[0]

    def faces(self, images: Sequence[Image.Image]) -> list[Face | None]:
        """The largest face of each image above the probability (None: none), detected in batches."""
        largest: list[Face | None] = []
        for found in self.detector.detect_batch(images):
            faces = [f for f in found if f.probability >= self.min_probability]
            largest.append(max(faces, key=_area) if faces else None)
        return largest

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


def _area(face: Face) -> float:
    return float((face.box[2] - face.box[0]) * (face.box[3] - face.box[1]))


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
        """:func:`weights_digest` of MTCNN's weights (ConfigError if they cannot be found)."""
        return weights_digest(load_mtcnn_weights())

    @property
    def preprocess_id(self) -> str:
        template = self.aligner.template
        return (
            f"align:mtcnn@{self.weights_digest},max_side={MTCNN.max_side},template={template.name},"
            f"size={template.size},on_no_face={self.on_no_face}"
        )

    def _cached(self, image: Image.Image) -> Path:
        """Where ``image``'s aligned crop is kept (``.png``; a ``.noface`` file beside it: none found)."""
        folder = f"{self.aligner.template.name}-{self.weights_digest}"
        return self.cache_dir / folder / f"{pixels_digest(image)}.png"

    def prepare(
        self, paths: Sequence[str | Path], cache_dir: Path | None = None, progress: bool = False
    ) -> None:
        """Align every image of ``paths`` not yet cached (crops kept in ``cache_dir`` from now on,
        when given); a DataError listing ALL face-less ones (``on_no_face=error``)."""
        if cache_dir is not None:
            self.cache_dir = cache_dir
        crops = self.align_files(paths, progress)
        missing = [path for path, crop in crops.items() if crop is None]
        if missing and self.on_no_face != "center-crop":
            raise DataError(no_face_message(missing, self.aligner.min_probability, self.on_no_face))

    def align_files(self, paths: Sequence[str | Path], progress: bool = False) -> dict[str, Path | None]:
        """Each file's cached crop (None: no face), the uncached ones detected in batches, with
        a progress bar that counts the crops found in the cache."""
        from tqdm.auto import tqdm

        from facebench.images import load_rgb

        crops: dict[str, Path | None] = {}
        cached, batch = 0, self.aligner.detector.batch_size
        label = f"aligning faces ({self.aligner.template.name})"
        with tqdm(total=len(paths), desc=label, unit="image", disable=not progress) as bar:
            for start in range(0, len(paths), batch):
                chunk = [str(path) for path in paths[start : start + batch]]
                todo = []
                for path in chunk:
                    image = load_rgb(path)
                    target = self._cached(image)
                    if target.is_file() or target.with_suffix(".noface").is_file():
                        crops[path] = target if target.is_file() else None
                        cached += 1
                    else:
                        todo.append((path, image, target))
                faces = self.aligner.faces([image for _, image, _ in todo]) if todo else []
                for (path, image, target), face in zip(todo, faces, strict=True):
                    crops[path] = target if self._store(image, face, target) is not None else None
                no_face = sum(crop is None for crop in crops.values())
                bar.set_postfix(cached=cached, no_face=no_face, refresh=False)
                bar.update(len(chunk))
        return crops

    def _aligned(self, image: Image.Image) -> Image.Image | None:
        """``image``'s aligned face from the cache, or detected now and cached; None: no face."""
        target = self._cached(image)
        if target.is_file():
            with Image.open(target) as crop:
                return crop.convert("RGB")
        if target.with_suffix(".noface").is_file():
            return None
        return self._store(image, self.aligner.face(image), target)

    def _store(self, image: Image.Image, face: Face | None, target: Path) -> Image.Image | None:
        """Cache ``image``'s crop of ``face`` at ``target`` (or a ``.noface`` mark) and return it."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if face is None:
            target.with_suffix(".noface").touch()
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
