"""Datasets by name: where a copy lives, fetching it, and the tasks its standard protocol runs.

A dataset is registered with a :class:`facebench.registry.DatasetSpec` (hook ``register_datasets``).
Its copy lives in one folder, found in this order: the ``path`` option (``--dataset lfw:path=DIR``),
``--data-dir DIR`` / ``FACEBENCH_DATA_DIR`` (then ``DIR/<name>``), or the user data folder
(``platformdirs.user_data_dir("facebench")/datasets/<name>``). :func:`fetch` downloads the spec's
files there with pooch, each verified by its SHA-256 (a mirror or a local copy of the files:
``base_url``, or ``FACEBENCH_DATASETS_URL``, serves them under their names); a dataset whose
license forbids redistribution names no URL and says where to request it.

The spec's target reads the copy into a :class:`DatasetData`: an images folder plus a pairs file
and/or an images table, converted (if needed) under a cache folder. :func:`dataset_tasks` turns
that into ordinary task configurations (the dataset's protocol, or the user's ``--task`` entries
with the dataset's files filled in) before the manager sees them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebench.errors import ConfigError, DataError
from facebench.options import parse_spec_string
from facebench.registry import DatasetSpec, Registry, get_registry

if TYPE_CHECKING:
    from facebench.experiment import TaskConfig

DATA_DIR_ENV = "FACEBENCH_DATA_DIR"
BASE_URL_ENV = "FACEBENCH_DATASETS_URL"
DATASET_OPTIONS = frozenset({"path"})


@dataclass(frozen=True)
class DatasetData:
    """What a dataset yields: an images folder plus a pairs file and/or an images table whose
    image names are relative to ``images``."""

    images: Path
    pairs: Path | None = None
    table: Path | None = None


def default_data_dir(data_dir: str | Path | None = None) -> Path:
    """``data_dir``, else ``FACEBENCH_DATA_DIR``, else the user data folder's ``datasets``."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("facebench")) / "datasets"


def dataset_root(name: str, path: str | Path | None = None, data_dir: str | Path | None = None) -> Path:
    """The folder of dataset ``name``'s copy: ``path`` if given, else ``<data dir>/<name>``."""
    return Path(path).expanduser() if path else default_data_dir(data_dir) / name


def work_dir(name: str, root: Path) -> Path:
    """Where the files converted from the copy at ``root`` are written (the user cache)."""
    import platformdirs

    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return Path(platformdirs.user_cache_dir("facebench")) / "datasets" / f"{name}-{key}"


def fetch(spec: DatasetSpec, root: str | Path, base_url: str | None = None) -> list[Path]:
    """Download ``spec``'s files into ``root`` (skipping those already there with the right
    checksum), unpack its archives, and return the files' paths."""
    import pooch

    if not spec.fetchable:
        raise ConfigError(_not_fetchable(spec, Path(root)))
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    root = Path(root)
    paths = []
    for file in spec.files:
        url = f"{base_url.rstrip('/')}/{file.name}" if base_url else str(file.url)
        processor = _unpacker(file.name) if file.unpack else None
        try:
            pooch.retrieve(
                url,
                known_hash=f"sha256:{file.sha256}",
                fname=file.name,
                path=root,
                processor=processor,
                progressbar=False,
            )
        except ValueError as exc:  # pooch: the checksum does not match; the file was not kept
            raise DataError(
                f"dataset {spec.name!r}: {file.name} from {url} is not the expected file ({exc}); "
                f"nothing was kept. Try again, or use another mirror (--base-url)"
            ) from None
        except Exception as exc:  # HTTP errors, connection refused, ...
            raise DataError(
                f"dataset {spec.name!r}: could not download {file.name} from {url} "
                f"({type(exc).__name__}: {exc}); check the address, or use a mirror (--base-url)"
            ) from None
        paths.append(root / file.name)
    return paths


def load_dataset(spec: DatasetSpec, root: Path, into: Path | None = None) -> DatasetData:
    """Read the copy of ``spec`` in ``root`` (converted files under ``into``) and check its files."""
    if not root.is_dir():
        raise ConfigError(_not_fetchable(spec, root) if not spec.fetchable else _fetch_hint(spec, root))
    reader = spec.load()
    data = reader(root, into or work_dir(spec.name, root))
    if not isinstance(data, DatasetData):
        raise ConfigError(f"dataset {spec.name!r}: its reader returned {data!r}, not a DatasetData")
    for path in (data.images, data.pairs, data.table):
        if path is not None and not path.exists():
            raise DataError(f"dataset {spec.name!r}: {path} does not exist")
    return data


def dataset_tasks(
    text: str | tuple[str, dict[str, Any]],
    tasks: Sequence[TaskConfig] = (),
    data_dir: str | Path | None = None,
    registry: Registry | None = None,
) -> tuple[list[TaskConfig], dict[str, Any]]:
    """The task configurations of ``--dataset NAME[:path=DIR]`` and a record for results.json.

    Without ``tasks`` they are the dataset's protocol; with them, each task gets the dataset's
    pairs file, images table and images folder where it reads one and names none. ``text`` may be
    parsed already: ``(name, options)``.
    """
    from facebench.experiment import _task_reads, task_config

    name, options = parse_spec_string(text) if isinstance(text, str) else text
    unknown = sorted(set(options) - DATASET_OPTIONS)
    if unknown:
        raise ConfigError(f"--dataset {name}: unknown option(s) {', '.join(unknown)}; known: path")
    spec = (registry or get_registry()).get("dataset", name).spec
    assert isinstance(spec, DatasetSpec)
    root = dataset_root(name, options.get("path"), data_dir)
    data = load_dataset(spec, root)
    if not tasks:
        protocol = [dict(entry) for entry in spec.protocol]
        for entry in protocol:
            entry.setdefault("name", name if len(protocol) == 1 else f"{name}-{entry['plugin']}")
        tasks = [task_config(entry, root, f"dataset {name}") for entry in protocol]
    configured = []
    for task in tasks:
        options = dict(task.options)
        if data.pairs is not None and _task_reads(task.plugin, "pairs_file"):
            options.setdefault("pairs_file_path", data.pairs)
        if data.table is not None and _task_reads(task.plugin, "images_table"):
            options.setdefault("table_path", str(data.table))
        options.setdefault("images_path", data.images)
        configured.append(type(task)(task.plugin, options))
    record = {
        "name": name,
        "root": str(root),
        "files_verified": verify_copy(spec, root),
        "pairs_sha256": _sha256(data.pairs),
        "table_sha256": _sha256(data.table),
    }
    return configured, record


def verify_copy(spec: DatasetSpec, root: Path) -> dict[str, bool]:
    """Whether each of the spec's files found in ``root`` (archives aside: they are unpacked) has
    its published SHA-256; a file that differs is warned about, since its results are not
    comparable with published figures."""
    verified = {}
    for file in spec.files:
        path = root / file.name
        if file.unpack or not file.sha256 or not path.is_file():
            continue
        verified[file.name] = _sha256(path) == file.sha256
        if not verified[file.name]:
            warnings.warn(
                f"dataset {spec.name!r}: {path} is not the published {file.name} (its SHA-256 differs); "
                f"results are not comparable with figures published on {spec.name}",
                stacklevel=3,
            )
    return verified


def _sha256(path: Path | None) -> str | None:
    return None if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


def _unpacker(name: str) -> Any:
    import pooch

    return pooch.Unzip(extract_dir=".") if name.endswith(".zip") else pooch.Untar(extract_dir=".")


def _fetch_hint(spec: DatasetSpec, root: Path) -> str:
    return (
        f"dataset {spec.name!r}: no copy at {root}; fetch it with `facebench fetch {spec.name}` "
        f"(or put a copy there, or give its folder: --dataset {spec.name}:path=DIR, --data-dir DIR)"
    )


def _not_fetchable(spec: DatasetSpec, root: Path) -> str:
    why = spec.license or "facebench knows no download address and checksum for it"
    where = f"; request it at {spec.request}" if spec.request else ""
    return (
        f"dataset {spec.name!r} cannot be fetched ({why}){where}. Put your copy at {root}, "
        f"or give its folder with --dataset {spec.name}:path=DIR or --data-dir DIR"
    )


def details_lines(info: dict[str, Any]) -> list[str]:
    """The lines ``facebench describe`` prints for a dataset or a benchmark."""
    if info["kind"] == "benchmark":
        return [f"Benchmark file: {info['benchmark_file']}"]
    lines = [f"License: {info['license'] or 'not stated'}"]
    if info["request"]:
        lines.append(f"Where to get it: {info['request']}")
    lines.append("Fetch: " + ("facebench fetch " + info["name"] if info["fetchable"] else "no (see above)"))
    lines += [f"File: {f['name']}  sha256={f['sha256'] or 'unknown'}" for f in info["files"]]
    lines += [f"Protocol task: {json.dumps(task)}" for task in info["protocol"]]
    return lines
