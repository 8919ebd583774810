"""Align a face photo to a dlib-style 150x150 chip: MTCNN's five landmarks, a similarity transform.

MTCNN (``facenet-pytorch``, whose wheel ships the detector weights) finds the face and five
landmarks: the two eye centres, the nose tip and the mouth corners. A least-squares similarity
transform (Umeyama 1991: rotation, uniform scale, translation) maps them onto where those
points sit in a dlib face chip, and the photo is resampled bilinearly, as dlib's
``extract_image_chip`` does.

The template comes from dlib's ``get_face_chip_details``: its mean face shape (68-point
convention, coordinates in 0-1), padded by 0.25 on each side and scaled to 150 pixels, the
defaults of ``compute_face_descriptor``. Eye centres are the means of the six points around
each eye; the nose tip is point 30, the mouth corners points 48 and 54. dlib's own 5-point
predictor marks different points (eye corners, nose base), so chips from this aligner are
close to dlib's, not identical.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image

from facebench.errors import ConfigError, DataError

CHIP_SIZE = 150
CHIP_PADDING = 0.25
# dlib's mean face shape, points 36-41 (image-left eye) and 42-47 (image-right eye), 0-1 coordinates
_LEFT_EYE = np.array(
    [[0.121737, 0.216423], [0.187122, 0.178758], [0.265825, 0.179852],
     [0.334606, 0.231733], [0.260918, 0.245099], [0.182743, 0.244077]]
)  # fmt: skip
_RIGHT_EYE = np.array(
    [[0.645647, 0.231733], [0.714428, 0.179852], [0.793132, 0.178758],
     [0.858516, 0.216423], [0.79751, 0.244077], [0.719335, 0.245099]]
)  # fmt: skip
_NOSE_TIP = np.array([0.490127, 0.515625])  # point 30
_MOUTH_LEFT = np.array([0.254149, 0.780233])  # point 48
_MOUTH_RIGHT = np.array([0.726104, 0.780233])  # point 54
MEAN_FACE_FIVE_POINTS = np.stack(
    [_LEFT_EYE.mean(axis=0), _RIGHT_EYE.mean(axis=0), _NOSE_TIP, _MOUTH_LEFT, _MOUTH_RIGHT]
)
"""Eye centres, nose tip, mouth corners (image left first), in dlib's 0-1 mean-face frame."""

INSTALL_HINT = (
    "align=true needs facenet-pytorch (for its MTCNN face detector). It pins an old torch, so "
    "install it without dependencies: pip install --no-deps facenet-pytorch && pip install requests"
)


def chip_template(size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The five landmark positions, in pixels, of a ``size`` chip with dlib's ``padding``."""
    return (padding + MEAN_FACE_FIVE_POINTS) / (2 * padding + 1) * size


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 matrix ``[sR | t]`` minimising ``sum ||s R source_i + t - target_i||^2`` (Umeyama)."""
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular_values, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection: flip the weakest axis
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    variance = (source_centred**2).sum() / len(source)
    scale = float(np.trace(np.diag(singular_values) @ sign) / variance)
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def warp_to_chip(image: Image.Image, landmarks: np.ndarray, size: int = CHIP_SIZE) -> Image.Image:
    """Resample ``image`` so that ``landmarks`` (5x2, pixel centres at integers) land on the template."""
    chip_to_image = similarity_transform(chip_template(size), landmarks)
    linear, offset = chip_to_image[:, :2], chip_to_image[:, 2]
    # PIL samples at pixel centres x + 0.5; shift so integer coordinates are pixel centres
    offset = offset + 0.5 - linear @ np.array([0.5, 0.5])
    coefficients = (*linear[0], offset[0], *linear[1], offset[1])
    return image.transform((size, size), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)


class FaceAligner:
    """Detects the largest face in a photo and returns its 150x150 dlib-style chip."""

    def __init__(self, min_probability: float = 0.9, size: int = CHIP_SIZE) -> None:
        self.min_probability = min_probability
        self.size = size

    @cached_property
    def detector(self) -> Any:
        try:
            from facenet_pytorch import MTCNN
        except ImportError as exc:
            raise ConfigError(f"{INSTALL_HINT} ({exc})") from None
        return MTCNN(keep_all=True, device="cpu")

    def landmarks(self, image: Image.Image, source: str = "the image") -> np.ndarray:
        """The five landmarks (5x2 pixels) of the largest face found in ``image``."""
        boxes, probabilities, points = self.detector.detect(image.convert("RGB"), landmarks=True)
        if boxes is not None:
            keep = np.asarray(probabilities, dtype=float) >= self.min_probability
            boxes, points = np.asarray(boxes)[keep], np.asarray(points)[keep]
        if boxes is None or len(boxes) == 0:
            raise DataError(
                f"no face found in {source} (MTCNN, probability >= {self.min_probability}); "
                f"remove it from the pairs file, or give aligned 150x150 face chips with align=false"
            )
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return np.asarray(points[int(np.argmax(areas))], dtype=np.float64)

    def align(self, image: Image.Image, source: str = "the image") -> Image.Image:
        """The chip of the largest face in ``image``."""
        image = image.convert("RGB")
        return warp_to_chip(image, self.landmarks(image, source), self.size)
