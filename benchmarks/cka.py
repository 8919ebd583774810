"""CKA between all 39 VGG16 layers of 2 models (random weights): minibatch and full-Gram side by side.

Runs the real pipeline: the demo's synthetic faces, an images table, two random-weight VGG16s
(seeds 0 and 1) with every leaf layer extracted, embedded through
:class:`facebench.manager.MultiModelTaskManager` into a temporary store; then the ``cka``
analysis reads the store twice: minibatch debiased CKA (Nguyen et al. 2021; ``--minibatch``
images per batch, memory O(L b^2)) and, when its Gram matrices fit ``--full-budget-mb``, the
full-Gram debiased CKA (memory O(L n^2)). Prints the time of each phase, the analysis's own
peak allocation (tracemalloc: NumPy arrays), the process's peak resident memory, the memory the
full-Gram path needs (78 layers x N^2 float64) at this size and at LFW's 13,233 images, the
largest difference between the two paths, and the analysis time over the embedding time.

    python benchmarks/cka.py                          # 1,000 images, 224 px, layers mean-pooled
    python benchmarks/cka.py --images 13233           # LFW's size (the full-Gram path is skipped)
    python benchmarks/cka.py --images 32 --size 64    # a quick run
    python benchmarks/cka.py --reduction flatten --size 64 --chunk-mb 16   # wide layers, chunked
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import facebench.layer_view as layer_view
from facebench.demo import write_stimuli
from facebench.layer_view import LayerView
from facebench.manager import MultiModelTaskManager
from facebench.registry import get_registry
from facebench_tasks.cka import CKAAnalysis


def peak_rss() -> str:
    """Peak resident memory, and the current heap and memory-mapped (store chunks, page cache) parts."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    heap, mapped = (int(status[key].split()[0]) / 1024 for key in ("RssAnon", "RssFile"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"peak RSS {peak:.0f} MiB (now: heap {heap:.0f} MiB, mapped files {mapped:.0f} MiB)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000, help="face images (default 1000)")
    parser.add_argument("--size", type=int, default=224, help="input size in pixels (default 224)")
    parser.add_argument("--reduction", default="mean", choices=["mean", "flatten"], help="layer reduction")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--chunk-mb", type=float, default=layer_view.DEFAULT_CHUNK_BYTES / 2**20, help="view read budget"
    )
    parser.add_argument("--minibatch", type=int, default=512, help="images per CKA minibatch (default 512)")
    parser.add_argument(
        "--full-budget-mb",
        type=float,
        default=8192,
        help="run the full-Gram path when it fits (default 8192)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="facebench-cka-") as folder:
        root = Path(folder)
        start = time.perf_counter()
        stimuli = write_stimuli(root / "stimuli", identities=max(2, -(-args.images // 4)), views=4)
        names = sorted(f"upright/{p.name}" for p in (stimuli.images / "upright").glob("*.png"))[: args.images]
        pd.DataFrame({"image": names}).to_csv(root / "faces.csv", index=False)
        print(f"{len(names)} images written in {time.perf_counter() - start:.1f} s; {peak_rss()}")

        registry = get_registry()
        leaves = [
            name
            for name in registry.create("model", "vgg16", pretrained=False).layer_names()
            if name not in ("features", "classifier")
        ]
        models = [
            registry.create(
                "model",
                "vgg16",
                name=f"vgg16-seed{seed}",
                pretrained=False,
                seed=seed,
                extract_layers=leaves,
                reduction=args.reduction,
                resize=args.size,
                crop=args.size,
                device=args.device,
            )
            for seed in (0, 1)
        ]
        layers = len(leaves)
        table = root / "faces.csv"
        with MultiModelTaskManager(
            models=models,
            analyses=[CKAAnalysis(table_path=table, images_path=stimuli.images)],
            batch_size=args.batch_size,
            cache_dir=None,
            progress=False,
        ) as manager:
            layer_view.DEFAULT_CHUNK_BYTES = int(args.chunk_mb * 2**20)
            start = time.perf_counter()
            for model in models:
                manager.run_all_tasks_with_model(model.name)
            embed_seconds = time.perf_counter() - start
            if manager.failures:
                raise SystemExit(manager.failure_report())
            print(
                f"embedded {len(names)} images x {layers} layers x 2 models on {models[0].device} "
                f"in {embed_seconds:.1f} s; {peak_rss()}"
            )
            paths = [stimuli.images / name for name in names]
            views = {
                (model_name, layer): LayerView(embeddings, layer, paths, names)
                for model_name, embeddings in manager.embeddings.items()
                for layer in embeddings.layers
            }
            count = len(views)
            full_mib = count * len(names) ** 2 * 8 / 2**20
            lfw_gib = count * 13233**2 * 8 / 2**30
            batch_mib = count * min(args.minibatch, len(names)) ** 2 * 8 / 2**20
            print(
                f"full-Gram path needs {full_mib:.0f} MiB here ({count} x {len(names)}^2 float64), "
                f"{lfw_gib:.0f} GiB at 13,233 images; minibatch path {batch_mib:.0f} MiB of batch Gram "
                f"matrices (torch threads {torch.get_num_threads()})"
            )
            minibatch, seconds = timed(
                "minibatch", CKAAnalysis(methods=["debiased"], minibatch=args.minibatch), views, embed_seconds
            )
            if full_mib <= args.full_budget_mb:
                full, _ = timed(
                    "full-Gram",
                    CKAAnalysis(methods=["debiased"], gram_budget_mb=math.inf),
                    views,
                    embed_seconds,
                )
                difference = np.abs(minibatch["CKA"].to_numpy() - full["CKA"].to_numpy())
                print(
                    f"  minibatch vs full-Gram debiased CKA: max |difference| {difference.max():.4f}, "
                    f"mean {difference.mean():.4f} over {len(difference)} values"
                )
            else:
                print(f"  full-Gram path skipped: {full_mib / 1024:.0f} GiB > --full-budget-mb")
        across = minibatch[
            (minibatch["Model A"] != minibatch["Model B"]) & (minibatch["Layer A"] == minibatch["Layer B"])
        ]
        print(
            f"  same layer across the two seeds (minibatch): CKA {across['CKA'].min():.3f} "
            f"to {across['CKA'].max():.3f}"
        )
        print(f"analysis / embedding time: {seconds / embed_seconds:.3f} (goal <= 0.25)")


def timed(label: str, analysis: CKAAnalysis, views: dict, embed_seconds: float) -> tuple[pd.DataFrame, float]:
    """Run ``analysis`` on ``views``; print its time, peak allocation and the process's peak RSS."""
    tracemalloc.start()
    start = time.perf_counter()
    result = analysis.run(views)
    seconds = time.perf_counter() - start
    allocated = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(
        f"{label} debiased CKA, {len(result)} values: {seconds:.1f} s "
        f"({seconds / embed_seconds:.3f} x embedding), peak allocated {allocated:.0f} MiB; {peak_rss()}"
    )
    return result, seconds


if __name__ == "__main__":
    main()
