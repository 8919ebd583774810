"""Extraction engine throughput: prints figures (not a test).

For VGG16 and open_clip ViT-B-32 (random weights, 224 px, the same batch size and thread count,
side by side in one run):

(a) bare forward throughput on pre-made tensors;
(b) the pipeline's throughput from JPEG files to pair distances (``embed_images`` +
    ``pair_distances`` on a fresh store, ``--data-path``: auto is the device path on CUDA),
    and (b)/(a) — goal >= 0.9; beside them, on an accelerator, the DataLoader alone for each
    data path (cpu: workers decode and preprocess; device: workers read bytes) and the device
    decode alone (``decode_jpeg`` in batches + ``apply_to_batch`` on the device, bytes in memory);
    and the agreement of the two paths: the largest cosine distance between an image's
    embeddings by the cpu and the device path (documented tolerance 1e-3);
(c) images through the network and forward calls on LFW-shaped pairs (6,000 pairs over 7,701
    images) against the per-pair baseline, counted with a tiny counting model;
(d) cold vs warm-cache wall time of a whole re-run (a new model object, as a new process would
    make) — goal >= 50x faster warm.

    python benchmarks/engine_throughput.py                  # 128 JPEGs, CPU: a few minutes on 2 cores
    python benchmarks/engine_throughput.py --images 8000 --batch-size 128 --device cuda  # the issue's figures
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from facebench.engine import default_num_workers, embed_images, pair_distances
from facebench.metrics import resolve_metric
from facebench.model import BaseModel
from facebench.registry import get_registry
from facebench.store import EmbeddingStore

LFW_PAIRS = 6000
LFW_IMAGES = 7701
JPEG_SIZE = 250  # LFW's image size
MODELS: dict[str, dict[str, Any]] = {
    "vgg16": {"pretrained": False},
    "clip": {"version": "ViT-B-32", "pretrained": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=128, help="JPEGs for (b) and (d) (default 128)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--workers", type=int, default=None, help="decoding workers (default: the engine's)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--data-path", default="auto", choices=["auto", "cpu", "device"], help="for (b)")
    parser.add_argument("--agreement-images", type=int, default=256, help="images for the paths' agreement")
    parser.add_argument("--bare-batches", type=int, default=2, help="timed batches for (a)")
    parser.add_argument("--lfw-scale", type=float, default=1.0, help="fraction of LFW's size for (c)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="facebench-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        paths = write_jpegs(root / "jpegs", args.images, JPEG_SIZE)
        img1, img2 = lfw_shaped_pairs(paths, pairs_for(args.images), np.random.default_rng(0))
        print(
            f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, "
            f"{args.images} JPEGs {JPEG_SIZE}x{JPEG_SIZE} ({time.perf_counter() - started:.1f} s to write), "
            f"{len(img1)} pairs over them"
        )
        for name in args.models:
            benchmark_model(name, args, paths, img1, img2, root / f"cache-{name}")
        count_forward_passes(root / "lfw", args.lfw_scale, args.batch_size, args.workers)


def benchmark_model(
    name: str, args: argparse.Namespace, paths: list[Path], img1: list[Path], img2: list[Path], cache: Path
) -> None:
    """(a), (b), (b)/(a) and (d) for one model."""
    model, build_s = timed(lambda: built(name, args.device))
    device = model.device
    print(f"\n== {name} ({type(model).__name__}, random weights) on {device}; build {build_s:.1f} s")

    bare = bare_forward_rate(model, args.batch_size, args.bare_batches)
    print(f"(a) bare forward:            {bare:8.1f} images/s")
    device_path = model.batch_preprocessing is not None
    if model.device.type != "cpu":  # on a CPU the workers share the cores with the forward pass
        workers = (
            args.workers if args.workers is not None else default_num_workers(len(paths), args.batch_size)
        )
        decode = decoding_rate(model, paths, args.batch_size, workers, "cpu")
        print(
            f"    DataLoader alone, cpu path:    {decode:8.1f} images/s "
            f"({workers} workers decode + preprocess)"
        )
        if device_path:
            read = decoding_rate(model, paths, args.batch_size, workers, "device")
            on_device = device_decode_rate(model, paths, args.batch_size)
            print(f"    DataLoader alone, device path: {read:8.1f} images/s ({workers} workers read bytes)")
            print(
                f"    device decode alone:           {on_device:8.1f} images/s (decode_jpeg + apply_to_batch)"
            )
    if device_path:
        worst = paths_agreement(name, args, paths[: args.agreement_images], model.output_layers[0])
        print(
            f"    cpu vs device path: max cosine distance {worst:.2e} over "
            f"{min(len(paths), args.agreement_images)} images (tolerance 1e-3)"
        )
    else:
        print("    device path: not available (the model's preprocessing needs PIL)")

    metric = resolve_metric("cosine")
    layer = model.output_layers[0]

    def run(run_model: BaseModel) -> tuple[Any, np.ndarray]:
        with EmbeddingStore(cache_dir=cache) as store:
            embeddings = embed_images(
                run_model,
                paths,
                store=store,
                batch_size=args.batch_size,
                num_workers=args.workers,
                progress=False,
                data_path=args.data_path,
            )
            return embeddings, pair_distances(embeddings, layer, img1, img2, metric)

    (cold, cold_distances), pipeline_s = timed(lambda: run(model))
    pipeline = len(paths) / pipeline_s
    print(
        f"(b) JPEG -> pair distances:  {pipeline:8.1f} images/s ({cold.computed} images embedded, "
        f"{cold.data_path} data path, {len(img1)} distances at {layer!r}, {pipeline_s:.1f} s)"
    )
    print(f"    (b)/(a) = {pipeline / bare:.2f}  (goal >= 0.9)")

    # A re-run makes a new, unbuilt model object; a fully cached run never builds the network.
    fresh, warm_build_s = timed(
        lambda: get_registry().create("model", name, device=args.device, **MODELS[name])
    )
    (warm, warm_distances), warm_pipeline_s = timed(lambda: run(fresh))
    assert warm.computed == 0 and np.allclose(warm_distances, cold_distances), "the warm run recomputed"
    cold_s, warm_s = build_s + pipeline_s, warm_build_s + warm_pipeline_s
    print(
        f"(d) cold run {cold_s:.2f} s (build {build_s:.2f} + embed/distances {pipeline_s:.2f}), "
        f"warm re-run {warm_s:.3f} s (create {warm_build_s:.2f} + cache/distances {warm_pipeline_s:.3f}): "
        f"{cold_s / warm_s:.0f}x faster warm (goal >= 50x); "
        f"embed/distances alone {pipeline_s / warm_pipeline_s:.0f}x"
    )


def built(name: str, device: str) -> BaseModel:
    model = get_registry().create("model", name, device=device, **MODELS[name])
    model.check_layers()
    return model


def bare_forward_rate(model: BaseModel, batch_size: int, batches: int) -> float:
    """Images/s of ``model.model(x)`` on a pre-made batch, after one warm-up batch."""
    size = model.get_preprocess_function()(Image.new("RGB", (JPEG_SIZE, JPEG_SIZE))).shape
    batch = torch.randn(batch_size, *size, generator=torch.Generator().manual_seed(0)).to(model.device)
    with torch.inference_mode():
        model.model(batch)
        synchronize(model.device)
        started = time.perf_counter()
        for _ in range(batches):
            model.model(batch)
        synchronize(model.device)
    return batch_size * batches / (time.perf_counter() - started)


def decoding_rate(
    model: BaseModel, paths: list[Path], batch_size: int, workers: int, data_path: str
) -> float:
    """Images/s of the engine's DataLoader alone for ``data_path`` (cpu: decode, preprocess, pin;
    device: read bytes, pin): the pipeline's ceiling on that path."""
    from torch.utils.data import DataLoader

    from facebench.datapath import DataPath

    data = DataPath(data_path, model)
    dataset = data.dataset(paths)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=model.device.type == "cuda",
        collate_fn=data.collate_fn(dataset),
    )
    started = time.perf_counter()
    for _ in loader:
        pass
    return len(paths) / (time.perf_counter() - started)


def device_decode_rate(model: BaseModel, paths: list[Path], batch_size: int) -> float:
    """Images/s of ``decode_jpeg`` on the model's device plus ``apply_to_batch``, from bytes in memory."""
    from torchvision.io import ImageReadMode, decode_jpeg

    preprocessing = model.batch_preprocessing
    assert preprocessing is not None
    data = [torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8) for path in paths]

    def run(chunk: list[torch.Tensor]) -> None:
        preprocessing.apply_to_batch(decode_jpeg(chunk, mode=ImageReadMode.RGB, device=model.device))

    run(data[:batch_size])  # warm-up (nvJPEG handles, kernels)
    synchronize(model.device)
    started = time.perf_counter()
    for start in range(0, len(data), batch_size):
        run(data[start : start + batch_size])
    synchronize(model.device)
    return len(data) / (time.perf_counter() - started)


def paths_agreement(name: str, args: argparse.Namespace, paths: list[Path], layer: str) -> float:
    """The largest cosine distance between an image's embeddings by the cpu and the device path."""
    with EmbeddingStore(cache_dir=None) as store:
        runs = [
            embed_images(
                built(name, args.device),
                paths,
                store=store,
                batch_size=args.batch_size,
                num_workers=args.workers,
                progress=False,
                data_path=data_path,
            ).vectors(layer, paths)
            for data_path in ("cpu", "device")
        ]
    a, b = (vectors.astype(np.float64) for vectors in runs)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float((1 - cosine).max())


def count_forward_passes(folder: Path, scale: float, batch_size: int, workers: int | None) -> None:
    """(c): LFW-shaped pairs through a counting model vs the per-pair baseline."""
    n_images = max(2, round(LFW_IMAGES * scale))
    n_pairs = max(1, round(LFW_PAIRS * scale))
    paths = write_jpegs(folder, n_images, 32)
    img1, img2 = lfw_shaped_pairs(paths, n_pairs, np.random.default_rng(1))
    model = CountingModel(device="cpu")
    with EmbeddingStore(cache_dir=None) as store:
        embeddings = embed_images(
            model, img1 + img2, store=store, batch_size=batch_size, num_workers=workers, progress=False
        )
        pair_distances(embeddings, "output", img1, img2, "cosine")
        after_first = (model.images, model.calls)
        embed_images(
            model, img2 + img1, store=store, batch_size=batch_size, num_workers=workers, progress=False
        )
    unique = len(set(img1) | set(img2))
    baseline_images = 2 * n_pairs  # both images of every pair
    baseline_calls = 2 * math.ceil(n_pairs / batch_size)  # two forward passes per batch of pairs
    print(f"\n== (c) LFW-shaped pairs: {n_pairs} pairs over {unique} images, batch {batch_size}")
    print(
        f"    per-pair baseline: {baseline_images} images through the network, {baseline_calls} forward calls"
    )
    print(
        f"    facebench:         {after_first[0]} images in {after_first[1]} forward calls "
        f"({baseline_images / after_first[0]:.2f}x fewer images, "
        f"{baseline_calls / after_first[1]:.2f}x fewer calls); "
        f"a second task on the same images: {model.images - after_first[0]} more"
    )


class CountingModel(BaseModel):
    """A tiny conv net on 32 px images that counts the images and calls of its forward passes."""

    image_size = 32

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.images = 0
        self.calls = 0

    def _build_model(self) -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
        )

    def _forward(self, tensor: torch.Tensor) -> torch.Tensor:
        self.images += tensor.shape[0]
        self.calls += 1
        return self.model(tensor)


def write_jpegs(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` distinct smooth-plus-noise JPEGs of ``size`` px."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(count)
    paths = []
    for index in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
            (size, size), Image.BICUBIC
        )
        pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-20, 21, (size, size, 3))
        path = folder / f"{index:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def pairs_for(images: int) -> int:
    """Pairs over ``images`` images in LFW's proportion (6,000 over 7,701)."""
    return max(1, math.ceil(images * LFW_PAIRS / LFW_IMAGES))


def lfw_shaped_pairs(
    paths: list[Path], n_pairs: int, rng: np.random.Generator
) -> tuple[list[Path], list[Path]]:
    """``n_pairs`` pairs using every image at least once (when 2 * n_pairs allows), others reused."""
    slots = rng.permutation(len(paths))[: 2 * n_pairs]
    extra = rng.integers(0, len(paths), 2 * n_pairs - len(slots))
    order = rng.permutation(np.concatenate([slots, extra]))
    first, second = order[:n_pairs], order[n_pairs:].copy()
    same = first == second
    second[same] = (second[same] + 1) % len(paths)
    return [paths[i] for i in first], [paths[i] for i in second]


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
