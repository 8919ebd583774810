"""One whole run per output folder: write a run beside the output folder, then swap it in.

A run's files are written into a fresh hidden folder next to the output folder
(``.<name>.facebench-<random>``), so the output folder never mixes two runs:

* a run that reached its end with at least one result (``status`` ``completed`` or
  ``completed with failures``) replaces the output folder as a whole: the previous run is renamed
  aside, the new one renamed into place, and the previous one deleted;
* a run that did not (``interrupted``: Ctrl-C or SIGTERM; ``export failed``: a file could not be
  written; ``failed``: no result at all) never replaces a complete run: it is kept beside it as
  ``<name>.<status>-<time>``. When the output folder holds no complete run (it is new, empty, or
  holds an incomplete run), the run takes its place, so what finished is where the user looks;
* a process killed outright (SIGKILL, power cut) leaves only the hidden folder, which can be
  deleted; the output folder is untouched.

Only a provable facebench run is ever replaced: a folder whose ``results.json`` facebench wrote,
with the manifest (``files``) of every file it wrote. :func:`check_output_folder` refuses, before
any model is built, an output folder that cannot be written, whose parent is a file, that holds
files but is not such a run, or that holds files the run did not write (listed, so the user can
move them): facebench never deletes a file it did not write. A file added while the run is
running keeps the new run beside the output folder instead.
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

INCOMPLETE = frozenset({"running", "interrupted", "export failed", "failed"})
SHOWN = 10  # foreign files named in a message


def check_output_folder(path: str | Path) -> None:
    """Raise :class:`ConfigError` if a run cannot be written to (and swapped into) ``path``
    (named as given in the messages)."""
    target = resolved_output(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"the output {path} is a file; choose a folder for the results (--output)")
    problem = replace_problem(target, path)
    if problem:
        raise ConfigError(f"{problem}; choose a new or empty folder (--output)")
    problem = check_writable_folder(target.parent)
    if problem:
        raise ConfigError(
            f"cannot write the results to {path}: {problem} (a run is written beside the output "
            f"folder, then swapped in); choose another folder with --output"
        )


def replace_problem(target: Path, shown: str | Path) -> str | None:
    """Why a run may not replace the folder ``target`` (None when it is absent, empty, or a
    facebench run holding only the files it wrote)."""
    if not target.is_dir() or not any(target.iterdir()):
        return None
    manifest = run_manifest(target)
    if manifest is None:
        return (
            f"the output folder {shown} holds files but no {RESULTS_JSON_FILE} written by facebench "
            f"(with the list of the files it wrote), so it is not a facebench results folder; a run "
            f"replaces its output folder as a whole and never deletes files it did not write"
        )
    foreign = sorted(name for name in files_in(target) if name not in manifest)
    if not foreign:
        return None
    more = f" (and {len(foreign) - SHOWN} more)" if len(foreign) > SHOWN else ""
    return (
        f"the output folder {shown} holds {len(foreign)} file(s) facebench did not write: "
        f"{', '.join(foreign[:SHOWN])}{more}; a run replaces its output folder as a whole and never "
        f"deletes files it did not write, so move them out of it"
    )


def run_manifest(folder: Path) -> set[str] | None:
    """The files a facebench run in ``folder`` says it wrote (results.json included, and
    report.html, which ``facebench report`` rewrites), or None when ``folder`` holds no
    results.json that facebench wrote."""
    from facebench.report import REPORT_FILE

    try:
        document = json.loads((folder / RESULTS_JSON_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    files = document.get("files")
    stamped = all(isinstance(document.get(key), str) for key in ("facebench_version", "status"))
    if not stamped or not isinstance(document.get("schema_version"), int) or not isinstance(files, list):
        return None
    if not all(isinstance(name, str) for name in files):
        return None
    return {*files, RESULTS_JSON_FILE, REPORT_FILE}


def files_in(folder: Path) -> list[str]:
    """Every file and symbolic link under ``folder``, as POSIX paths relative to it."""
    return [
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_symlink() or not path.is_dir()
    ]


def is_complete_run(folder: Path) -> bool:
    """Whether ``folder`` holds a run whose results.json says it completed."""
    try:
        status = json.loads((folder / RESULTS_JSON_FILE).read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(status, str) and status not in INCOMPLETE


class RunFolder:
    """The hidden folder a run is written into, and where it goes when the run ends."""

    def __init__(self, target: str | Path, runs_only: bool = False) -> None:
        """``runs_only``: replace ``target`` only when it is a facebench run holding only the
        files it wrote (:func:`replace_problem`); otherwise the run is kept beside it."""
        self.target = resolved_output(target)
        self.runs_only = runs_only
        self.staging: Path | None = None

    def start(self) -> Path:
        """Create and return the hidden folder beside the target."""
        parent = self.target.parent
        staging = parent / f".{self.target.name}.facebench-{secrets.token_hex(4)}"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir()  # mode from the umask, like any folder the user creates
        except OSError as exc:
            raise write_error(exc, self.target, "choose another folder with --output") from exc
        self.staging = staging
        return staging

    def finish(self, status: str) -> Path:
        """Put the written run in place for ``status``; return where it is now."""
        assert self.staging is not None, "start() first"
        replaceable = not self.runs_only or replace_problem(self.target, self.target) is None
        if replaceable and (status not in INCOMPLETE or not is_complete_run(self.target)):
            self._swap_in()
            return self.target
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        beside = self.target.with_name(f"{self.target.name}.{status.replace(' ', '-')}-{stamp}")
        if beside.exists():  # another run kept beside in the same second
            beside = beside.with_name(f"{beside.name}-{secrets.token_hex(2)}")
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
