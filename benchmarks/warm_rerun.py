"""A warm whole-process re-run of one model beside ``python -c "import torch"``, in one run.

A face backbone (``iresnet``, random weights saved as a local checkpoint, so the weights file
takes part in the cache identity) runs the ``accuracy`` task on the demo stimuli once cold (the
cache empty: every image embedded), then again with the same cache (warm: nothing to embed).
Goal: warm whole-process ≤ 2 × ``python -c "import torch"``, with the cache identity as strict
as before (the weights digest is remembered per file identity, not skipped:
:mod:`facebench.file_digests`).

    python benchmarks/warm_rerun.py [--arch iresnet50] [--repeats 3] [--profile]

``--profile`` also prints the top of a cProfile of one warm run (cumulative time).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FACEBENCH = str(Path(sys.executable).with_name("facebench"))


def wall_time(command: list[str], repeats: int) -> float:
    """Median wall time of ``command`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="iresnet50")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    import torch

    from facebench.demo import write_stimuli
    from facebench_models.iresnet_net import iresnet

    with tempfile.TemporaryDirectory(prefix="facebench-warm-") as folder:
        root = Path(folder)
        stimuli = write_stimuli(root / "stimuli", identities=16, views=4)
        pairs = next(iter(stimuli.pairs.values()))
        weights = root / f"{args.arch}.pth"
        torch.manual_seed(0)
        torch.save(iresnet(args.arch).state_dict(), weights)
        run = [
            FACEBENCH,
            "run",
            "--model",
            f"iresnet:arch={args.arch},weights_path={weights}",
            "--task",
            "accuracy:n_folds=2",
            "--pairs",
            str(pairs),
            "--images",
            str(stimuli.images),
            "--cache-dir",
            str(root / "cache"),
            "--output",
            str(root / "results"),
            "--quiet",
        ]
        rows = sum(1 for _ in pairs.open()) - 1
        size = weights.stat().st_size / 2**20
        print(f"model iresnet {args.arch}, weights file {size:.0f} MiB, {rows} pairs of {pairs.name}")
        cold = wall_time(run, 1)
        warm = wall_time(run, args.repeats)
        floor = wall_time([sys.executable, "-c", "import torch"], args.repeats)
        print(f"cold run (cache empty)          {cold:7.2f} s")
        print(f"warm run (median of {args.repeats})          {warm:7.2f} s")
        print(f"python -c 'import torch' (median) {floor:5.2f} s")
        ratio = warm / floor
        print(f"warm / import torch: {ratio:.2f} (goal <= 2: {'met' if ratio <= 2 else 'NOT met'})")
        if args.profile:
            profile = root / "warm.prof"
            subprocess.run(
                [sys.executable, "-m", "cProfile", "-o", str(profile), FACEBENCH, *run[1:]], check=True
            )
            import pstats

            pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
