"""Ray executor scaling: prints figures (not a test).

The same JPEGs (LFW's size) are embedded by torchvision's ResNet-18 (random weights, 112 px
crops, one torch thread per actor) through ``embed_images`` on a fresh store each time:

- Ray start-up: ``ray.init`` of a local cluster with ``--cpus`` CPUs;
- a fixed cost per run: one batch on one actor (actor start, model build; best of two);
- 1 actor, then 2 actors, on all the images: wall time, images/s, the speed-up of 2 actors
  over 1 and its efficiency per actor (goal >= 0.8 of linear once the images amortise the
  fixed cost);
- the local executor with one torch thread, for reference.

    python benchmarks/ray_executor.py                 # 256 JPEGs, 2 CPUs
    python benchmarks/ray_executor.py --images 2048 --cpus 4 --actors 1 2 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_throughput import JPEG_SIZE, write_jpegs

from facebench.engine import embed_images
from facebench.executors.ray import RayExecutor
from facebench.registry import get_registry
from facebench.store import EmbeddingStore

MODEL = {"arch": "resnet18", "pretrained": False, "resize": 128, "crop": 112, "device": "cpu"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    import ray

    with tempfile.TemporaryDirectory(prefix="facebench-ray-bench-") as tmp:
        root = Path(tmp)
        paths = write_jpegs(root / "jpegs", args.images, JPEG_SIZE)
        started = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        startup = time.perf_counter() - started
        print(
            f"ray {ray.__version__}, torch {torch.__version__}; {args.images} JPEGs {JPEG_SIZE}x{JPEG_SIZE}, "
            f"batch {args.batch_size}, torchvision resnet18 (random weights, 112 px), 1 thread per actor"
        )
        print(f"Ray start-up (ray.init, {args.cpus} CPUs): {startup:.1f} s")

        def run(executor: object, images: list[Path], name: str) -> float:
            model = get_registry().create("model", "torchvision", name=name, **MODEL)
            model.check_layers()  # the driver builds it once (layer names); not timed
            with EmbeddingStore(root / f"cache-{name}") as store:
                started = time.perf_counter()
                result = embed_images(
                    model, images, store=store, batch_size=args.batch_size, progress=False, executor=executor
                )
                elapsed = time.perf_counter() - started
            assert result.computed == len(images)
            return elapsed

        fixed = min(run(RayExecutor(num_actors=1), paths[: args.batch_size], f"fixed{i}") for i in range(2))
        print(
            f"fixed cost of a Ray run (1 batch, 1 actor: actor start, model build; best of 2): {fixed:.1f} s"
        )
        times = {}
        for actors in args.actors:
            times[actors] = run(RayExecutor(num_actors=actors), paths, f"actors{actors}")
            print(f"{actors} actor(s): {times[actors]:6.1f} s, {args.images / times[actors]:6.1f} images/s")
        base = min(args.actors)
        for actors in args.actors:
            if actors == base:
                continue
            speedup = times[base] / times[actors]
            efficiency = speedup / (actors / base)
            print(
                f"speed-up {actors} vs {base} actor(s): {speedup:.2f}x, {efficiency:.2f} of linear per actor "
                f"(goal >= 0.8 with images enough to amortise the fixed cost)"
            )
        ray.shutdown()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        local = run("local", paths, "local")
        torch.set_num_threads(threads)
        print(
            f"local executor, 1 torch thread + default decoding workers (reference): {local:6.1f} s, "
            f"{args.images / local:6.1f} images/s"
        )


if __name__ == "__main__":
    main()
