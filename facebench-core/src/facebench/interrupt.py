"""SIGTERM stops a run the way Ctrl-C does, so what finished is still exported.

Batch schedulers (Slurm, Kubernetes, ``timeout``) stop a job with SIGTERM; by default that kills
Python at once. While :func:`sigterm_as_interrupt` is active, SIGTERM raises :class:`Terminated`
(a ``KeyboardInterrupt``) instead, which unwinds the run like Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The run was stopped by SIGTERM."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated("stopped by SIGTERM")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated`; the previous handler comes back after.

    Signal handlers belong to the main thread: elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
