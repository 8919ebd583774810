"""Peak memory and time of the embedding store on an LFW-sized run, with synthetic embeddings.

Writes ``--images`` random rows of width ``--dim`` batch by batch (as embed_images does), then
computes ``--pairs`` cosine distances from the store (as pair_distances does), and prints the
disk size and the process's peak resident memory after each step. Defaults: LFW (7,701
images, 6,000 pairs) at VGG16 ``features.30`` flattened (512 x 7 x 7 = 25,088 floats).

    python benchmarks/store_memory.py [--dim 197376] [--dtype float16]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch

from facebench.engine import Embeddings, pair_distances
from facebench.store import EmbeddingStore


def memory() -> str:
    """Peak resident memory, and the current anonymous (heap) and file-backed (memory-map) parts."""
    text = Path("/proc/self/status").read_text()
    status = dict(line.split(":", 1) for line in text.splitlines())
    anon, file = (int(status[key].split()[0]) / 1024 for key in ("RssAnon", "RssFile"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"peak RSS {peak:.0f} MiB (now: heap {anon:.0f} MiB, mapped files {file:.0f} MiB)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=7701)
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--dim", type=int, default=25088)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{args.images} images x {args.dim} {args.dtype}; start: {memory()}")
    with EmbeddingStore(None, dtype=args.dtype) as store:
        table = store.table("benchmark", "layer", "flatten")
        keys = [f"{i:032x}" for i in range(args.images)]
        start = time.perf_counter()
        for first in range(0, args.images, args.batch):
            batch_keys = keys[first : first + args.batch]
            table.write(batch_keys, rng.standard_normal((len(batch_keys), args.dim), dtype=np.float32))
        size = sum(path.stat().st_size for path in table.folder.iterdir())
        print(f"write: {time.perf_counter() - start:.1f} s, {size / 2**30:.2f} GiB on disk, {memory()}")
        paths = [f"/images/{i}.jpg" for i in range(args.images)]
        embeddings = Embeddings(
            "benchmark",
            "benchmark",
            torch.device("cpu"),
            {"layer": table},
            dict(zip(paths, keys, strict=True)),
        )
        img1 = [paths[i] for i in rng.integers(0, args.images, args.pairs)]
        img2 = [paths[i] for i in rng.integers(0, args.images, args.pairs)]
        start = time.perf_counter()
        distances = pair_distances(embeddings, "layer", img1, img2, "cosine")
        print(
            f"{args.pairs} cosine distances: {time.perf_counter() - start:.1f} s, "
            f"mean {distances.mean():.4f}, {memory()}"
        )


if __name__ == "__main__":
    main()
