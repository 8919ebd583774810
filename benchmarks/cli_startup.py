"""How long ``facebench list`` takes to answer, beside a bare interpreter and ``import torch``.

Goals: ``facebench list`` under 1.5 s on a 2-core machine with every package installed;
``facebench list --json`` (every entry's options, from the option cache once a first run filled
it: :mod:`facebench.option_cache`) under 0.5 s without importing torch.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 7
FACEBENCH = str(Path(sys.executable).with_name("facebench"))
IMPORTS_TORCH = (
    "import sys; from facebench.cli import main; "
    "main(['list', '--json'], standalone_mode=False); print('torch' in sys.modules, file=sys.stderr)"
)


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
    checked = subprocess.run(
        [sys.executable, "-c", IMPORTS_TORCH], check=True, capture_output=True, text=True
    )
    torch_imported = checked.stderr.strip().splitlines()[-1] == "True"
    print(f"'facebench list --json' imports torch: {'yes' if torch_imported else 'no'}")
    json_goal = figures["facebench list --json"] <= 0.5 and not torch_imported
    print(f"goal 'facebench list --json' <= 0.5 s without torch: {'met' if json_goal else 'NOT met'}")


if __name__ == "__main__":
    main()
