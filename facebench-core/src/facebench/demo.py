"""The built-in demo: a synthetic, license-clean face stimulus set and an experiment over it.

:func:`write_stimuli` draws cartoon faces with PIL, deterministically from a seed (no download,
nothing shipped): several identities that differ in face shape, eye spacing and size, nose,
mouth, skin tone and hair; each seen in several views (small shift, rotation and scale) and
lightings; upright and inverted copies; and Thatcherised copies (eyes and mouth flipped
vertically inside the upright face, and that face inverted). It writes one pairs file per task:

=============================  ==========================================================
``verification.csv``           same / different identity, upright (``truth`` 1 / 0)
``verification_inverted.csv``  the same pairs, both images inverted
``similarity.csv``             different identities with a "human rating" ``distance``
``conditions.csv``             ``condition``: same identity (view change / lighting
                               change) or different identity
``thatcher.csv``               Thatcherised vs original face, ``group`` upright / inverted
=============================  ==========================================================

The "human" distances are the identities' parameter distances plus seeded noise; they stand
in for ratings so that every task runs, and are not data about people.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facebench.errors import ConfigError
from facebench.results import atomic_path, write_text_atomic

DEMO_SEED = 0
IMAGE_SIZE = 112
CANVAS = 128  # faces are drawn on a CANVAS x CANVAS square, then resized to IMAGE_SIZE
BACKGROUND = (128, 128, 128)
DEMO_IMAGES_FOLDER = "images"
DEMO_EXPERIMENT_FILE = "experiment.toml"

# The demo's default model: random VGG16 weights (no download) on 64 x 64 inputs (fast on a
# CPU), four layers from the first pooling stage to the penultimate fully connected layer, kept
# whole (flatten): random filters keep the layout and colours that tell these faces apart.
DEMO_MODEL_SPEC = "vgg16:pretrained=false"
DEMO_LAYERS = ("features.4", "features.16", "features.30", "classifier.4")
DEMO_REDUCTION = "flatten"
DEMO_IMAGE_SIZE = 64  # resize and crop: small images, fast CNNs on a CPU


@dataclass(frozen=True)
class Identity:
    """The drawing parameters of one synthetic person (lengths in canvas pixels)."""

    name: str
    face_width: float
    face_height: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_height: float
    eye_spacing: float
    eye_width: float
    eye_height: float
    iris: tuple[int, int, int]
    brow_thickness: int
    nose_length: float
    nose_width: float
    mouth_width: float
    mouth_height: float
    lips: tuple[int, int, int]

    def feature_vector(self) -> list[float]:
        """The shape and colour parameters, for "human" similarity ratings."""
        return [
            self.face_width,
            self.face_height,
            *self.skin,
            *self.hair,
            self.hair_height,
            self.eye_spacing,
            self.eye_width,
            self.eye_height,
            self.nose_length,
            self.nose_width,
            self.mouth_width,
            self.mouth_height,
        ]


@dataclass(frozen=True)
class View:
    """How one photograph of a face differs from the canonical drawing."""

    shift: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0  # degrees, counter-clockwise
    scale: float = 1.0
    brightness: float = 1.0
    light_slope: float = 0.0  # left-to-right brightness gradient on the face (-0.25 .. 0.25)


def random_identities(count: int, seed: int = DEMO_SEED) -> list[Identity]:
    """``count`` distinct identities drawn from a seeded generator."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def colour(low: Sequence[int], high: Sequence[int]) -> tuple[int, int, int]:
        return tuple(int(rng.integers(lo, hi + 1)) for lo, hi in zip(low, high, strict=True))  # type: ignore[return-value]

    identities = []
    for index in range(count):
        shade = rng.uniform(0.0, 1.0)  # skin tone from light to dark
        skin = tuple(round(a + (b - a) * shade) for a, b in zip(LIGHT_SKIN, DARK_SKIN, strict=True))
        identities.append(
            Identity(
                name=f"person{index + 1:02d}",
                face_width=rng.uniform(60, 82),
                face_height=rng.uniform(78, 98),
                skin=skin,  # type: ignore[arg-type]
                hair=_hair_colour(rng),
                hair_height=rng.uniform(6, 22),
                eye_spacing=rng.uniform(10, 17),
                eye_width=rng.uniform(8, 13),
                eye_height=rng.uniform(4, 7),
                iris=colour((30, 30, 20), (120, 150, 170)),
                brow_thickness=int(rng.integers(2, 5)),
                nose_length=rng.uniform(10, 18),
                nose_width=rng.uniform(6, 12),
                mouth_width=rng.uniform(14, 26),
                mouth_height=rng.uniform(6, 13),
                lips=colour((150, 40, 40), (210, 110, 110)),
            )
        )
    return identities


LIGHT_SKIN, DARK_SKIN = (245, 215, 190), (110, 75, 55)
LIGHT_SKIN, DARK_SKIN = (245, 215, 190), (110, 75, 55)
HAIR_COLOURS = ((25, 20, 18), (70, 45, 30), (120, 80, 45), (200, 165, 100), (140, 60, 30), (150, 150, 150))


def _hair_colour(rng: Any) -> tuple[int, int, int]:
    """A natural hair colour, slightly varied."""
    base = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]
    jitter = int(rng.integers(-15, 16))
    return tuple(min(255, max(0, c + jitter)) for c in base)  # type: ignore[return-value]


def random_views(count: int, seed: int) -> list[View]:
    """The canonical view followed by ``count - 1`` seeded variations."""
    import numpy as np

    rng = np.random.default_rng(seed)
    views = [View()]
    for _ in range(count - 1):
        views.append(
            View(
                shift=(float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5))),
                rotation=float(rng.uniform(-10, 10)),
                scale=float(rng.uniform(0.9, 1.1)),
                brightness=float(rng.uniform(0.8, 1.15)),
                light_slope=float(rng.uniform(-0.25, 0.25)),
            )
        )
    return views


def _face_geometry(identity: Identity) -> dict[str, Any]:
    cx, cy = CANVAS / 2, CANVAS / 2 + 4
    eye_y = cy - identity.face_height * 0.12
    return {
        "centre": (cx, cy),
        "eye_y": eye_y,
        "eyes_x": (
            cx - identity.eye_spacing - identity.eye_width / 2,
            cx + identity.eye_spacing + identity.eye_width / 2,
        ),
        "mouth_y": cy + identity.face_height * 0.26,
    }


def feature_boxes(identity: Identity) -> list[tuple[int, int, int, int]]:
    """The boxes (left, top, right, bottom) flipped to Thatcherise: each eye with its brow, the mouth."""
    geometry = _face_geometry(identity)
    eye_y = geometry["eye_y"]
    boxes = []
    for ex in geometry["eyes_x"]:
        half_w = identity.eye_width / 2 + 3
        top = eye_y - identity.eye_height / 2 - 7 - identity.brow_thickness
        bottom = eye_y + identity.eye_height / 2 + 2
        boxes.append((math.floor(ex - half_w), math.floor(top), math.ceil(ex + half_w), math.ceil(bottom)))
    mx, my = geometry["centre"][0], geometry["mouth_y"]
    half_w, half_h = identity.mouth_width / 2 + 2, identity.mouth_height / 2 + 3
    boxes.append(
        (math.floor(mx - half_w), math.floor(my - half_h), math.ceil(mx + half_w), math.ceil(my + half_h))
    )
    return boxes


def draw_face(identity: Identity, thatcherised: bool = False) -> Any:
    """The canonical (frontal, evenly lit) head of ``identity``: a PIL RGBA image, transparent
    around the head."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    geometry = _face_geometry(identity)
    cx, cy = geometry["centre"]
    fw, fh = identity.face_width, identity.face_height
    hair_top = cy - fh / 2 - identity.hair_height
    draw.ellipse((cx - fw / 2 - 5, hair_top, cx + fw / 2 + 5, cy + fh * 0.15), fill=identity.hair)
    draw.ellipse((cx - fw / 2 - 5, cy - 8, cx - fw / 2 + 5, cy + 10), fill=identity.skin)  # ears
    draw.ellipse((cx + fw / 2 - 5, cy - 8, cx + fw / 2 + 5, cy + 10), fill=identity.skin)
    draw.ellipse((cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2), fill=identity.skin)
    draw.chord((cx - fw / 2, cy - fh / 2, cx + fw / 2, cy - fh / 2 + fh * 0.45), 180, 360, fill=identity.hair)

    eye_y = geometry["eye_y"]
    ew, eh = identity.eye_width, identity.eye_height
    for ex in geometry["eyes_x"]:
        draw.ellipse((ex - ew / 2, eye_y - eh / 2, ex + ew / 2, eye_y + eh / 2), fill=(250, 250, 245))
        iris_r = eh * 0.45
        iris_y = eye_y - eh * 0.1
        draw.ellipse((ex - iris_r, iris_y - iris_r, ex + iris_r, iris_y + iris_r), fill=identity.iris)
        draw.ellipse((ex - 1.2, iris_y - 1.2, ex + 1.2, iris_y + 1.2), fill=(10, 10, 10))
        draw.arc(
            (ex - ew / 2, eye_y - eh / 2, ex + ew / 2, eye_y + eh / 2), 180, 360, fill=(40, 25, 20), width=2
        )
        brow_y = eye_y - eh / 2 - 5
        draw.line(
            (ex - ew / 2 - 1, brow_y + 1, ex, brow_y - 1, ex + ew / 2 + 1, brow_y + 1),
            fill=identity.hair,
            width=identity.brow_thickness,
        )

    nose_top = eye_y + eh / 2 + 2
    nose_tip = nose_top + identity.nose_length
    shadow = tuple(max(0, int(c * 0.78)) for c in identity.skin)
    draw.polygon(
        [(cx, nose_top), (cx - identity.nose_width / 2, nose_tip), (cx + identity.nose_width / 2, nose_tip)],
        fill=shadow,
    )
    mx, my = cx, geometry["mouth_y"]
    mw, mh = identity.mouth_width, identity.mouth_height
    # a smile: the lower half of an ellipse, with a darker lip line on top
    draw.chord((mx - mw / 2, my - mh / 2, mx + mw / 2, my + mh / 2), 0, 180, fill=identity.lips)
    draw.line((mx - mw / 2, my, mx + mw / 2, my), fill=(90, 20, 25), width=2)

    if thatcherised:
        for box in feature_boxes(identity):
            region = image.crop(box).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
            image.paste(region, box[:2])
    return image


def photograph(face: Any, view: View, noise_seed: int) -> Any:
    """``face`` (RGBA) moved, rotated, scaled and relit as ``view`` says, on the grey
    background, with slight sensor noise; an RGB image of IMAGE_SIZE pixels."""
    import numpy as np
    from PIL import Image

    moved = face.rotate(view.rotation, resample=Image.Resampling.BILINEAR, translate=view.shift)
    if view.scale != 1.0:
        size = round(CANVAS * view.scale)
        scaled = moved.resize((size, size), Image.Resampling.BILINEAR)
        offset = (CANVAS - size) // 2
        if offset >= 0:
            moved = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
            moved.paste(scaled, (offset, offset))
        else:
            moved = scaled.crop((-offset, -offset, -offset + CANVAS, -offset + CANVAS))
    pixels = np.asarray(moved, dtype=np.float32)
    colour, alpha = pixels[..., :3], pixels[..., 3:] / 255.0
    gradient = 1.0 + view.light_slope * np.linspace(-1.0, 1.0, CANVAS, dtype=np.float32)
    lit = colour * view.brightness * gradient[None, :, None]
    composed = alpha * lit + (1.0 - alpha) * np.array(BACKGROUND, dtype=np.float32)
    composed += np.random.default_rng(noise_seed).normal(0.0, 2.0, composed.shape).astype(np.float32)
    image = Image.fromarray(np.clip(composed, 0, 255).astype(np.uint8), "RGB")
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class DemoStimuli:
    """Where :func:`write_stimuli` put things."""

    root: Path
    images: Path
    pairs: dict[str, Path]  # pairs-file key -> path
    identities: list[Identity]


def write_stimuli(
    output_dir: str | Path, identities: int = 8, views: int = 4, seed: int = DEMO_SEED
) -> DemoStimuli:
    """Draw the demo stimuli and pairs files into ``output_dir`` (see the module docstring)."""
    if identities < 2 or views < 2:
        raise ConfigError(f"the demo needs at least 2 identities and 2 views, not {identities} and {views}")
    root = Path(output_dir)
    images_dir = root / DEMO_IMAGES_FOLDER
    people = random_identities(identities, seed)
    view_list = random_views(views, seed + 1)
    for person_index, person in enumerate(people):
        upright_face = draw_face(person)
        for view_index, view in enumerate(view_list):
            photo = photograph(
                upright_face, view, noise_seed=seed * 100_003 + person_index * 101 + view_index
            )
            _save_png(photo, images_dir / "upright" / f"{person.name}_v{view_index}.png")
            _save_png(photo.rotate(180), images_dir / "inverted" / f"{person.name}_v{view_index}.png")
        thatcher = photograph(
            draw_face(person, thatcherised=True), view_list[0], noise_seed=seed + person_index
        )
        _save_png(thatcher, images_dir / "thatcher-upright" / f"{person.name}.png")
        _save_png(thatcher.rotate(180), images_dir / "thatcher-inverted" / f"{person.name}.png")

    pairs = _pairs_tables(people, views, seed)
    paths = {}
    for key, (columns, rows) in pairs.items():
        paths[key] = _write_pairs(root / f"{key}.csv", columns, rows)
    write_text_atomic(root / "README.txt", _readme_text(people, view_list))
    return DemoStimuli(root, images_dir, paths, people)


def _pairs_tables(
    people: list[Identity], views: int, seed: int
) -> dict[str, tuple[list[str], list[list[Any]]]]:
    import numpy as np

    rng = np.random.default_rng(seed + 2)

    def path(folder: str, person: Identity, view: int) -> str:
        return f"{folder}/{person.name}_v{view}.png"

    same = [(p, p, v1, v2) for p in people for v1, v2 in itertools.combinations(range(views), 2)]
    person_pairs = list(itertools.combinations(people, 2))
    # Different-identity pairs are drawn without repeats: a repeated pair would count twice.
    candidates = [(a, b, v1, v2) for a, b in person_pairs for v1 in range(views) for v2 in range(views)]
    different = [candidates[i] for i in rng.permutation(len(candidates))[: len(same)]]
    verification = [(a, b, v1, v2, 1) for a, b, v1, v2 in same] + [
        (a, b, v1, v2, 0) for a, b, v1, v2 in different
    ]
    order = rng.permutation(len(verification))
    verification = [verification[i] for i in order]

    features = np.array([p.feature_vector() for p in people], dtype=float)
    z = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-9)
    raw = {
        (a.name, b.name): float(np.linalg.norm(z[i] - z[j]))
        for (i, a), (j, b) in itertools.combinations(enumerate(people), 2)
    }
    low, span = min(raw.values()), (max(raw.values()) - min(raw.values())) or 1.0
    similarity = []
    for a, b in person_pairs:
        rating = 1.0 + 6.0 * (raw[(a.name, b.name)] - low) / span + rng.normal(0.0, 0.4)
        similarity.append(
            [path("upright", a, 0), path("upright", b, 0), round(float(np.clip(rating, 1, 7)), 3)]
        )

    conditions = []
    for person in people:
        for view in range(1, views):
            conditions.append([path("upright", person, 0), path("upright", person, view), "same identity"])
    for a, b, v1, v2 in different[: len(conditions)]:
        conditions.append([path("upright", a, v1), path("upright", b, v2), "different identity"])
    for index, person in enumerate(people):
        other = people[(index + 1) % len(people)]
        conditions.append(
            [path("inverted", person, 0), path("inverted", other, 0), "different identity, inverted"]
        )

    thatcher = []
    for person in people:
        thatcher.append(
            [path("upright", person, 0), f"thatcher-upright/{person.name}.png", "upright", person.name]
        )
        thatcher.append(
            [path("inverted", person, 0), f"thatcher-inverted/{person.name}.png", "inverted", person.name]
        )

    return {
        "verification": (
            ["img1", "img2", "truth"],
            [[path("upright", a, v1), path("upright", b, v2), t] for a, b, v1, v2, t in verification],
        ),
        "verification_inverted": (
            ["img1", "img2", "truth"],
            [[path("inverted", a, v1), path("inverted", b, v2), t] for a, b, v1, v2, t in verification],
        ),
        "similarity": (["img1", "img2", "distance"], similarity),
        "conditions": (["img1", "img2", "condition"], conditions),
        "thatcher": (["img1", "img2", "group", "identity"], thatcher),
    }


def _write_pairs(path: Path, columns: list[str], rows: list[list[Any]]) -> Path:
    with atomic_path(path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def _save_png(image: Any, path: Path) -> None:
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG", optimize=False)


def _readme_text(people: list[Identity], views: list[View]) -> str:
    return (
        "facebench demo stimuli: synthetic cartoon faces drawn by facebench.demo "
        "(no real people, no licence restrictions).\n"
        f"{len(people)} identities x {len(views)} views (view 0 is frontal and evenly lit), "
        f"{IMAGE_SIZE}x{IMAGE_SIZE} px PNG.\n"
        "images/upright, images/inverted: every view, upright and rotated 180 degrees.\n"
        "images/thatcher-upright, images/thatcher-inverted: view 0 with eyes and mouth flipped "
        "vertically, upright and rotated 180 degrees.\n"
        "The 'distance' ratings in similarity.csv are parameter distances plus noise, not human data.\n"
    )


DEMO_TASKS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    # (task plugin, task name, pairs file key, options)
    ("accuracy", "Verification (upright)", "verification", {"label_column": "truth"}),
    ("accuracy", "Verification (inverted)", "verification_inverted", {"label_column": "truth"}),
    ("correlation", "Similarity", "similarity", {"distance_column": "distance"}),
    (
        "conditioned-average-distances",
        "Same vs different identity",
        "conditions",
        {"condition_column": "condition"},
    ),
    (
        "relative-difference",
        "Thatcher Effect",
        "thatcher",
        {"group_column": "group", "groups": ["upright", "inverted"], "identity_column": "identity"},
    ),
)


def demo_experiment_toml(
    model_spec: str | None = None,
    stimuli: str = "stimuli",
    output: str = "results",
    device: str | None = None,
    batch_size: int = 16,
) -> str:
    """An experiment file running every demo task on ``stimuli`` (paths relative to the file).

    ``model_spec`` (``NAME:key=value,...``) defaults to random-weight VGG16 at
    :data:`DEMO_LAYERS`, each flattened (:data:`DEMO_REDUCTION`: every value, no averaging).
    """
    from facebench.options import parse_spec_string

    plugin, options = parse_spec_string(model_spec or DEMO_MODEL_SPEC)
    if model_spec is None:
        options = {
            **options,
            "layers": list(DEMO_LAYERS),
            "reduction": DEMO_REDUCTION,
            "resize": DEMO_IMAGE_SIZE,
            "crop": DEMO_IMAGE_SIZE,
        }
    lines = [
        "# facebench demo experiment: synthetic faces (facebench demo), every task type.",
        "# Run it with:  facebench run THIS_FILE.toml",
        f"output = {_toml(output)}",
        f"batch_size = {batch_size}",
        'cache = false  # embeddings in a temporary folder; set cache_dir = "..." to keep them',
    ]
    if device:
        lines.append(f"device = {_toml(device)}")
    lines += ["", "[[models]]", f"plugin = {_toml(plugin)}"]
    lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
    for task_plugin, name, key, task_options in DEMO_TASKS:
        lines += [
            "",
            "[[tasks]]",
            f"plugin = {_toml(task_plugin)}",
            f"name = {_toml(name)}",
            f"pairs = {_toml(f'{stimuli}/{key}.csv')}",
            f"images = {_toml(f'{stimuli}/{DEMO_IMAGES_FOLDER}')}",
            'metric = "cosine"',
            "options = { " + ", ".join(f"{k} = {_toml(v)}" for k, v in task_options.items()) + " }",
        ]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """A TOML literal for a string, number, boolean or list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if value is None:
        raise ValueError("TOML has no null; leave the option out")
    import json

    return json.dumps(str(value))


def prepare_demo(
    output_dir: str | Path, model_spec: str | None = None, device: str | None = None, batch_size: int = 16
) -> Path:
    """Write the stimuli to ``output_dir/stimuli`` and ``output_dir/experiment.toml``; return the latter."""
    root = Path(output_dir)
    write_stimuli(root / "stimuli")
    text = demo_experiment_toml(model_spec, device=device, batch_size=batch_size)
    return write_text_atomic(root / DEMO_EXPERIMENT_FILE, text)
