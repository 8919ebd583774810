"""One whole run per output folder: write a run beside the output folder, then swap it in.

A run's files are written into a fresh hidden folder next to the output folder
(``.<name>.facebench-<random>``), so the output folder never mixes two runs:

* a run that reached its end and wrote every file (``status`` ``completed`` or
  ``completed with failures``) replaces the output folder as a whole: the previous run is renamed
  aside, the new one renamed into place, and the previous one deleted;
* an incomplete run (``interrupted``: Ctrl-C or SIGTERM; ``export failed``: a file could not be
  written) never replaces a complete run: it is kept beside it as ``<name>.<status>-<time>``.
  When the output folder holds no complete run (it is new, empty, or holds an incomplete run),
  the incomplete run takes its place, so what finished is where the user looks;
* a process killed outright (SIGKILL, power cut) leaves only the hidden folder, which can be
  deleted; the output folder is untouched.

:func:`check_output_folder` refuses, before any model is built, an output folder that cannot be
written, whose parent is a file, or that holds files but no ``results.json`` (facebench replaces
the output folder as a whole, so it must not be a folder of other things).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import datetime
from pathlib import Path

from facebench.errors import ConfigError
from facebench.filesystem import check_writable_folder, write_error
from facebench.results import RESULTS_JSON_FILE

INCOMPLETE = frozenset({"running", "interrupted", "export failed"})


def check_output_folder(path: str | Path) -> None:
    """Raise :class:`ConfigError` if a run cannot be written to (and swapped into) ``path``."""
    target = resolved_output(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"the output {target} is a file; choose a folder for the results (--output)")
    if target.is_dir() and any(target.iterdir()) and not (target / RESULTS_JSON_FILE).is_file():
        raise ConfigError(
            f"the output folder {target} holds files but no {RESULTS_JSON_FILE}, so it is not a "
            f"facebench results folder; a run replaces its output folder as a whole, so choose a "
            f"new or empty folder (--output)"
        )
    problem = check_writable_folder(target.parent)
    if problem:
        raise ConfigError(
            f"cannot write the results to {target}: {problem} (a run is written beside the output "
            f"folder, then swapped in); choose another folder with --output"
        )


def is_complete_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run whose results.json says it completed."""
    try:
        status = json.loads((folder / RESULTS_JSON_FILE).read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(status, str) and status not in INCOMPLETE


class RunFolder:
    """The hidden folder a run is written into, and where it goes when the run ends."""

    def __init__(self, target: str | Path) -> None:
        self.target = resolved_output(target)
        self.staging: Path | None = None

    def start(self) -> Path:
        """Create and return the hidden folder beside the target."""
        parent = self.target.parent
        staging = parent / f".{self.target.name}.facebench-{secrets.token_hex(4)}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir()  # mode from the umask, like any folder the user creates
        except OSError as exc:
            raise write_error(exc, staging, "choose another folder with --output") from exc
        self.staging = staging
        return staging

    def finish(self, status: str) -> Path:
        """Put the written run in place for ``status``; return where it is now."""
        assert self.staging is not None, "start() first"
        if status not in INCOMPLETE or not is_complete_run(self.target):
            self._swap_in()
            return self.target
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        beside = self.target.with_name(f"{self.target.name}.{status.replace(' ', '-')}-{stamp}")
        os.replace(self.staging, beside)
        return beside

    def _swap_in(self) -> None:
        assert self.staging is not None
        previous = None
        if self.target.exists():
            previous = self.target.with_name(f".{self.target.name}.facebench-previous-{secrets.token_hex(4)}")
            try:
                os.replace(self.target, previous)
            except OSError as exc:
                raise write_error(exc, self.target, f"the new run is in {self.staging}") from exc
        os.replace(self.staging, self.target)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)


def resolved_output(path: str | Path) -> Path:
    """``path`` made absolute; a symbolic link to a folder is followed (the folder is swapped)."""
    path = Path(path).absolute()
    return path.resolve() if path.is_symlink() else path
