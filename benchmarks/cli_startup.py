"""How long ``facebench list`` takes to answer, beside a bare interpreter and ``import torch``.

Goal: under 1.5 s on a 2-core machine with every package installed.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 7
FACEBENCH = str(Path(sys.executable).with_name("facebench"))


def wall_time(command: list[str]) -> float:
    """Median wall time of ``command`` over REPEATS runs (one warm-up run first)."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    figures = {
        "python -c pass": wall_time([sys.executable, "-c", "pass"]),
        "facebench list": wall_time([FACEBENCH, "list"]),
        "facebench list --json": wall_time([FACEBENCH, "list", "--json"]),
        "python -c 'import torch'": wall_time([sys.executable, "-c", "import torch"]),
    }
    for name, seconds in figures.items():
        print(f"{name:28s} {seconds:6.3f} s (median of {REPEATS})")
    ratio = figures["facebench list"] / figures["python -c 'import torch'"]
    print(f"facebench list / import torch: {ratio:.2f}")
    goal = figures["facebench list"] < 1.5
    print(f"goal 'facebench list' < 1.5 s: {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
