"""CKA between all 39 VGG16 layers of 2 models (random weights) on 1,000 face images.

Runs the real pipeline: the demo's synthetic faces, an images table, two random-weight VGG16s
(seeds 0 and 1) with every leaf layer extracted, and the ``cka`` analysis (linear and debiased
linear) through :class:`facebench.manager.MultiModelTaskManager`, which embeds the images into
a temporary store and then runs the analysis from the store only. Prints the time of each phase
and the process's peak resident memory after it (which includes the store's memory-mapped pages),
the size of the Gram matrices the analysis holds (78 layers x N^2 float64) and the peak memory
the analysis allocated (tracemalloc: NumPy arrays, not the reclaimable mapped pages).

    python benchmarks/cka.py                          # 1,000 images, 224 px, layers mean-pooled
    python benchmarks/cka.py --images 32 --size 64    # a quick run
    python benchmarks/cka.py --reduction flatten --size 64 --chunk-mb 16   # wide layers, chunked

``--reduction flatten`` keeps every layer whole (VGG16 features.0 at 224 px is 3.2 M floats
per image: use a small ``--size``); the Gram matrices are still accumulated ``--chunk-mb`` at a
time, so memory does not grow with the layer's width.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import pandas as pd
import torch

import facebench.layer_view as layer_view
from facebench.demo import write_stimuli
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
        analysis = CKAAnalysis(table_path=root / "faces.csv", images_path=stimuli.images)
        with MultiModelTaskManager(
            models=models,
            analyses=[analysis],
            batch_size=args.batch_size,
            cache_dir=None,
            progress=False,
        ) as manager:
            layer_view.DEFAULT_CHUNK_BYTES = int(args.chunk_mb * 2**20)
            start = time.perf_counter()
            for model in models:
                manager.run_all_tasks_with_model(model.name)
            embed_seconds = time.perf_counter() - start
            print(
                f"embedded {len(names)} images x {layers} layers x 2 models on {models[0].device} "
                f"in {embed_seconds:.1f} s; {peak_rss()}"
            )
            tracemalloc.start()
            start = time.perf_counter()
            manager.run_analyses()
            cka_seconds = time.perf_counter() - start
            allocated = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            if manager.failures:
                raise SystemExit(manager.failure_report())
            result = manager.analysis_results[analysis.name]
        grams = 2 * layers * len(names) ** 2 * 8 / 2**20
        print(
            f"CKA ({', '.join(result['Method'].unique())}) for {2 * layers} model-layers, "
            f"{len(result)} values, in {cka_seconds:.1f} s (torch threads {torch.get_num_threads()}); "
            f"Gram matrices held: {grams:.0f} MiB, peak allocated by the analysis (tracemalloc): "
            f"{allocated:.0f} MiB; {peak_rss()}"
        )
        across = result[(result["Model A"] != result["Model B"]) & (result["Layer A"] == result["Layer B"])]
        for method, rows in across.groupby("Method"):
            low, high = rows["CKA"].min(), rows["CKA"].max()
            print(f"  {method}: same layer across the two seeds, CKA {low:.3f} to {high:.3f}")


if __name__ == "__main__":
    main()
