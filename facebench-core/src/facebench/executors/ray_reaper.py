"""Leave no Ray process behind a killed run: a watchdog for the local Ray that a run starts.

When the ray executor starts a local Ray (no ``address``), the driver's children (the GCS
server, the raylet) and their children (actors, the dashboard and runtime-env agents) outlive a
driver killed with SIGKILL: the agents lingered about a minute. :func:`start_reaper` starts
``python -m facebench.executors.ray_reaper DRIVER_PID``, a process of its own session (a Ctrl-C
to the terminal does not reach it) that notes the driver's Ray descendants (:func:`is_ray`)
every :data:`POLL_SECONDS` and, once the driver is gone, kills those still running (each checked
by its start time, so a reused process id is never hit), then exits. Linux only (it reads
``/proc``); elsewhere nothing is started. Standard library only, so it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
PROC = Path("/proc")


def start_reaper(driver: int | None = None) -> subprocess.Popen[bytes] | None:
    """Start the watchdog of ``driver`` (default: this process); None where there is no ``/proc``."""
    if not (PROC / "self" / "stat").exists():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "facebench.executors.ray_reaper", str(driver or os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, start time)`` of ``pid``, or None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (name) "
    return int(fields[1]), int(fields[19])


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
    return children


def is_ray(pid: int) -> bool:
    """Whether ``pid`` runs Ray's code: a ``ray::...`` process title, or a program or script in a
    ``ray`` folder (the raylet, the GCS server, a worker before it renames itself)."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")[:2]
    except OSError:
        return False
    for arg in map(os.fsdecode, argv):
        if arg.startswith("ray::") or "ray" in Path(arg.split(" ")[0]).parts[:-1]:
            return True
    return False


def descendants(root: int) -> list[int]:
    """Every process below ``root`` in the process tree."""
    children, found, todo = _children(), [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def watch(driver: int) -> list[int]:
    """Note ``driver``'s descendants until it is gone, then kill the ones still running; return
    the killed process ids."""
    born = _stat(driver)
    if born is None:
        return []
    noted: dict[int, int] = {}
    while (now := _stat(driver)) is not None and now[1] == born[1]:
        for pid in descendants(driver):
            stat = _stat(pid)
            if pid != os.getpid() and stat is not None and pid not in noted and is_ray(pid):
                noted[pid] = stat[1]
        time.sleep(POLL_SECONDS)
    for pid in list(noted):  # what the noted processes started since (a worker of a raylet)
        for child in descendants(pid):
            stat = _stat(child)
            if stat is not None and is_ray(child):
                noted.setdefault(child, stat[1])
    killed = []
    for pid, started in noted.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    return killed


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(sys.argv[1]))
