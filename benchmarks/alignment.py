"""Face alignment throughput against VGG16's embedding throughput: prints figures (not a test).

Photos of LFW's size (250x250 JPEGs made from ``tests/fixtures/alignment/grace_hopper.jpg``:
scaled, shifted, turned and padded, no downloads), on the same device, side by side in one run,
in alternating rounds (a busy machine slows both alike; the median round of each is printed):

(a) alignment: ``align=mtcnn``'s step on a fresh crop cache (JPEG files in, dlib chips cached out:
    MTCNN in batches of one image size, then the warp), and MTCNN's detection one image at a time;
(b) VGG16 embedding: ``embed_images`` on a fresh store (random weights, 224 px);

and (a)/(b) — goal >= 4, so that alignment never dominates a run. ``--device cuda`` runs both on
the GPU.

    python benchmarks/alignment.py                    # 64 photos, 3 rounds: a few minutes on 2 cores
    python benchmarks/alignment.py --device cuda --images 512
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facebench.alignment import MTCNN, AlignStep
from facebench.engine import embed_images
from facebench.images import load_rgb
from facebench.registry import get_registry
from facebench.store import EmbeddingStore

PHOTO = Path(__file__).parents[1] / "tests" / "fixtures" / "alignment" / "grace_hopper.jpg"
SIDE = 250  # LFW's photos are 250x250


def lfw_sized_photos(folder: Path, count: int) -> list[Path]:
    """``count`` 250x250 JPEGs of the test photo: the face at various sizes, places and angles."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with Image.open(PHOTO) as opened:
        photo = opened.convert("RGB")
    paths = []
    for index in range(count):
        height = int(rng.integers(200, 330))
        scaled = photo.resize((round(photo.width * height / photo.height), height), Image.Resampling.BILINEAR)
        turned = scaled.rotate(float(rng.uniform(-12, 12)), Image.Resampling.BILINEAR, fillcolor=(90, 90, 90))
        canvas = Image.new("RGB", (SIDE, SIDE), tuple(int(v) for v in rng.integers(0, 255, 3)))
        canvas.paste(turned, (int(rng.integers(-60, 40)), int(rng.integers(-60, 20))))
        paths.append(folder / f"photo_{index:04d}.jpg")
        canvas.save(paths[-1], quality=90)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=64, help="250x250 photos (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="VGG16's batch size")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="facebench-align-bench-") as tmp:
        root = Path(tmp)
        paths = lfw_sized_photos(root / "photos", args.images)
        print(
            f"torch {torch.__version__}, {args.threads} threads, device {args.device}, "
            f"{args.images} photos {SIDE}x{SIDE}, {args.rounds} rounds"
        )
        vgg16 = get_registry().create("model", "vgg16", pretrained=False, device=args.device)
        detector = MTCNN(device=args.device)
        aligned, single, embedded, found = [], [], [], 0
        for round_index in range(args.rounds):
            step = AlignStep("dlib", on_no_face="center-crop", cache_dir=root / f"crops-{round_index}")
            step.aligner.detector = detector
            started = time.perf_counter()
            crops = step.align_files(paths)
            aligned.append(len(paths) / (time.perf_counter() - started))
            found = sum(crop is not None for crop in crops.values())
            images = [load_rgb(path) for path in paths]
            started = time.perf_counter()
            for image in images:
                detector.detect(image)
            single.append(len(paths) / (time.perf_counter() - started))
            started = time.perf_counter()
            store = EmbeddingStore(root / f"store-{round_index}")
            embed_images(vgg16, paths, store=store, batch_size=args.batch_size, progress=False)
            embedded.append(len(paths) / (time.perf_counter() - started))
        align_rate, vgg_rate = statistics.median(aligned), statistics.median(embedded)
        faces = f"(faces in {found}/{len(paths)})"
        print(f"(a) alignment (batched MTCNN + dlib warp): {align_rate:8.1f} images/s  {faces}")
        print(f"    MTCNN one image at a time:             {statistics.median(single):8.1f} images/s")
        print(f"(b) VGG16 embedding (embed_images):        {vgg_rate:8.1f} images/s")
        print(f"(a)/(b) = {align_rate / vgg_rate:.1f}x (goal >= 4x)")


if __name__ == "__main__":
    main()
