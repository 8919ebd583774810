"""``facebench extract``: every image's features per model and layer, written to files.

The images go through the same engine, cache and executors as ``facebench run``
(:func:`facebench.engine.embed_images`): already cached images are read from the store, and a
second extraction of the same images computes nothing. The files are written from the store in
row blocks (:mod:`facebench.feature_files`), so a wide layer never has to fit in memory.

Output folder::

    extract.json              models (identity, layers, reduction), format, image count, files
    images.txt                the image names (relative to the images folder), one per line:
                              row i of every file is image i
    <model>/<layer>.<ext>     the features (format: facebench.feature_files)
    rdms/<model>/<layer>.hdf5 with an RDM metric: rsatoolbox RDMs (facebench.rdm_export)

Like a run folder, the output is whole or nothing: everything is written into a hidden folder
beside it and swapped in at the end (:class:`facebench.runfolder.RunFolder`); a failed or
interrupted extraction leaves the previous output untouched (what was embedded stays in the
cache, so running again only writes the files). The output folder must be new, empty, or a
previous extraction (it holds ``extract.json``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebench.errors import ConfigError, DataError
from facebench.feature_files import FORMATS, check_format, check_size, write_features
from facebench.results import check_distinct_file_names, safe_filename
from facebench.task import check_image_names

if TYPE_CHECKING:
    from facebench.executors import Executor
    from facebench.model import BaseModel
    from facebench.store import EmbeddingStore

MANIFEST_FILE = "extract.json"
IMAGES_FILE = "images.txt"


@dataclass
class ExtractResult:
    """What :func:`extract_features` wrote."""

    folder: Path
    images: list[str]
    files: list[Path] = field(default_factory=list)  # relative to folder
    computed: dict[str, int] = field(default_factory=dict)  # model -> images embedded now
    cached: dict[str, int] = field(default_factory=dict)  # model -> images read from the cache


def folder_images(images_path: str | Path) -> list[str]:
    """Every image file under ``images_path`` (by suffix), relative, ``/``-separated, sorted."""
    from facebench.pairs import IMAGE_SUFFIXES

    root = Path(images_path)
    if not root.is_dir():
        raise DataError(f"images folder {str(root)!r} does not exist (--images)")
    names = sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.name.startswith(".")
    )
    if not names:
        raise DataError(f"images folder {str(root)!r} holds no image files (--images)")
    return names


def table_images(table_path: str | Path, images_path: str | Path) -> list[str]:
    """The ``image`` column of an images table, checked to lie in ``images_path``."""
    from facebench.pairs import TABLE_IMAGE_COLUMN, read_table_file

    frame = read_table_file(table_path)
    check_image_names(frame[TABLE_IMAGE_COLUMN], Path(images_path), Path(table_path))
    return [str(name) for name in frame[TABLE_IMAGE_COLUMN]]


def check_extract_output(path: str | Path) -> Path:
    """The resolved output folder, or :class:`ConfigError` if an extraction cannot replace it."""
    from facebench.filesystem import check_writable_folder
    from facebench.runfolder import resolved_output

    target = resolved_output(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"the output {target} is a file; choose a folder for the features (--output)")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
        raise ConfigError(
            f"the output folder {target} holds files but no {MANIFEST_FILE}, so it is not a facebench "
            f"extraction; an extraction replaces its output folder as a whole, so choose a new or "
            f"empty folder (--output)"
        )
    problem = check_writable_folder(target.parent)
    if problem:
        raise ConfigError(f"cannot write the features to {target}: {problem}; choose another --output")
    return target


def extract_features(
    models: Sequence[BaseModel],
    images_path: str | Path,
    output: str | Path,
    fmt: str = "npy",
    *,
    image_names: Sequence[str] | None = None,
    rdm: str | None = None,
    store: EmbeddingStore | None = None,
    batch_size: int = 32,
    num_workers: int | None = None,
    progress: bool = True,
    executor: Executor | str | None = None,
    data_path: str = "auto",
    channels_last: bool = False,
    torch_compile: bool = False,
) -> ExtractResult:
    """Embed ``image_names`` (default: every image in ``images_path``) with every model and write
    each model-layer's features to ``output`` in ``fmt`` (module docstring); with ``rdm`` (a
    metric, :mod:`facebench.rdm_export`) also each model-layer's RDM. ``store``: the embedding
    cache (default: the user cache folder). Everything is checked before any model is built."""
    from facebench.engine import embed_images
    from facebench.imagecheck import check_images_decode
    from facebench.layer_view import LayerView
    from facebench.runfolder import RunFolder
    from facebench.store import EmbeddingStore

    check_format(fmt)
    if rdm is not None:
        from facebench.rdm_export import check_rdm_metric

        check_rdm_metric(rdm)
    if not models:
        raise ConfigError("facebench extract needs at least one model (--model NAME)")
    model_names = [model.name for model in models]
    repeated = sorted({name for name in model_names if model_names.count(name) > 1})
    if repeated:
        raise ConfigError(
            f"two models are named {', '.join(map(repr, repeated))}; give each its own name "
            f"(--model NAME:name=other,...), since the files are named after the models"
        )
    check_distinct_file_names(model_names, "model")
    for model in models:
        check_distinct_file_names(model.output_layers, f"layer of model {model.name!r}")
    target = check_extract_output(output)
    root = Path(images_path).absolute()
    if image_names is None:
        names = folder_images(root)
    else:
        names = [str(name) for name in image_names]
        check_image_names(names, root, Path("the image names"))
        if len(set(names)) != len(names):
            raise DataError("the image names to extract must not repeat")
    paths = [root / name for name in names]
    check_images_decode(paths, progress=progress)
    for model in models:
        if model.extract_layers:
            model.check_layers_before_building()

    result = ExtractResult(folder=target, images=names)
    own_store = store is None
    store = EmbeddingStore() if store is None else store
    run_folder = RunFolder(target)
    try:
        staging = run_folder.start()
    except BaseException:
        if own_store:
            store.close()
        raise
    try:
        (staging / IMAGES_FILE).write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
        described = []
        for model in models:
            embeddings = embed_images(
                model,
                paths,
                store=store,
                batch_size=batch_size,
                num_workers=num_workers,
                progress=progress,
                executor=executor,
                data_path=data_path,
                channels_last=channels_last,
                torch_compile=torch_compile,
            )
            result.computed[model.name], result.cached[model.name] = embeddings.computed, embeddings.cached
            layers = {}
            for layer in model.output_layers:
                view = LayerView(embeddings, layer, paths, names)
                relative = Path(safe_filename(model.name)) / f"{safe_filename(layer)}{FORMATS[fmt]}"
                check_size(fmt, len(view), view.dim, f"model {model.name!r}, layer {layer!r}")
                blocks = (block for _, block in view.iter_chunks())
                write_features(staging / relative, fmt, blocks, names, view.dim)
                result.files.append(relative)
                layers[layer] = {"file": relative.as_posix(), "dim": view.dim}
                if rdm is not None:
                    from facebench.rdm_export import write_layer_rdm

                    rdm_file = Path("rdms") / safe_filename(model.name) / f"{safe_filename(layer)}.hdf5"
                    write_layer_rdm(view, rdm, staging / rdm_file)
                    result.files.append(rdm_file)
                    layers[layer]["rdm"] = rdm_file.as_posix()
            described.append(_model_record(model, layers, embeddings.computed, embeddings.cached))
        manifest = _manifest(root, names, fmt, rdm, described)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        kept = "" if store.temporary else "; the images embedded so far are in the cache, so running again"
        exc.add_note(
            f"nothing was written to {target} (an extraction is written whole or not at all)"
            + (f"{kept} only writes the files" if kept else "")
        )
        raise
    finally:
        if own_store:
            store.close()
    run_folder.finish("completed")
    return result


def _model_record(model: BaseModel, layers: dict[str, Any], computed: int, cached: int) -> dict[str, Any]:
    return {
        "name": model.name,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "identity": model.identity,
        "reduction": {layer: model.reduction_for(layer) for layer in layers},
        "layers": layers,
        "computed": computed,
        "cached": cached,
    }


def _manifest(
    root: Path, names: list[str], fmt: str, rdm: str | None, models: list[dict[str, Any]]
) -> dict[str, Any]:
    from facebench.plugins import core_version

    return {
        "facebench_version": core_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "images_path": os.fspath(root),
        "images_file": IMAGES_FILE,
        "image_count": len(names),
        "format": fmt,
        "dtype": "float32",
        "rdm_metric": rdm,
        "models": models,
    }


def extract_from_flags(
    models: Sequence[str],
    layers: str | None,
    images: str,
    table: str | None,
    output: str,
    fmt: str,
    rdm: str | None,
    device: str | None,
    batch_size: int,
    cache_dir: str | None,
    no_cache: bool,
    executor: str | None,
    data_path: str,
    progress: bool,
) -> ExtractResult:
    """``facebench extract``: build the models from ``NAME:key=value,...`` specs and extract."""
    from facebench.experiment import model_config
    from facebench.options import parse_spec_string
    from facebench.registry import get_registry
    from facebench.store import USER_CACHE, EmbeddingStore

    if not models:
        raise ConfigError("facebench extract needs at least one --model NAME")
    registry = get_registry()
    check_format(fmt)  # before any model is created
    built = []
    for spec in models:
        plugin, options = parse_spec_string(spec)
        config = model_config({"plugin": plugin, **options}, Path.cwd(), f"--model {plugin}")
        options = {"name": config.name, **config.options}
        if layers:
            options.setdefault("extract_layers", [name.strip() for name in layers.split(",") if name.strip()])
        if device:
            options.setdefault("device", device)
        built.append(registry.create("model", plugin, **options))
    names = table_images(table, images) if table else None
    executor_object = None
    if executor:
        executor_name, executor_options = parse_spec_string(executor)
        executor_object = registry.create("executor", executor_name, **executor_options)
    store = EmbeddingStore(None if no_cache else (cache_dir or USER_CACHE))
    with store:
        return extract_features(
            built,
            images,
            output,
            fmt,
            image_names=names,
            rdm=rdm,
            store=store,
            batch_size=batch_size,
            progress=progress,
            executor=executor_object,
            data_path=data_path,
        )
