"""``facebench align``: align every photo of a folder or dataset ahead of a run (the crops go to
the same cache a run reads) and write a contact sheet of the aligned faces by image name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from facebench.errors import ConfigError, DataError, UnknownNameError


@dataclass(frozen=True)
class AlignReport:
    """What ``facebench align`` did: each image's crop (None: no face), where, and the sheets."""

    images: Path
    template: str
    crops: dict[str, Path | None]
    cache: Path
    sheets: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        missing = [name for name, crop in self.crops.items() if crop is None]
        lines = [
            f"Aligned {len(self.crops) - len(missing)} of {len(self.crops)} images in {self.images} "
            f"to the {self.template!r} template (crops cached in {self.cache})"
        ]
        if missing:
            more = f", ... ({len(missing) - 20} more)" if len(missing) > 20 else ""
            shown = ", ".join(missing[:20]) + more
            lines.append(f"No face found in {len(missing)} (the sheet marks them): {shown}")
        lines += [f"Contact sheet: {path}" for path in self.sheets]
        return "\n".join(lines)


def images_folder(dataset: str, data_dir: str | None = None) -> Path:
    """``dataset`` as a folder of images, or a registered dataset's images folder."""
    if Path(dataset).is_dir():
        return Path(dataset)
    from facebench.datasets import dataset_root, load_dataset
    from facebench.registry import get_registry

    try:
        spec = get_registry().get("dataset", dataset).spec
    except UnknownNameError as exc:
        raise DataError(f"{dataset!r} is neither an images folder nor a dataset name: {exc}") from None
    return load_dataset(spec, dataset_root(dataset, None, data_dir)).images  # type: ignore[arg-type]


def model_template(model: str) -> str:
    """The ``alignment_template`` a registered model declares."""
    from facebench.registry import get_registry

    return str(get_registry().get("model", model.partition(":")[0]).spec.load().alignment_template)


def align_dataset(
    dataset: str,
    template: str | None = None,
    model: str | None = None,
    sheet: str | None = None,
    cache_dir: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
) -> AlignReport:
    """Align every image of ``dataset`` to ``template`` (or ``model``'s; default ``crop``), caching
    the crops as a run does, and write the contact sheet(s) when ``sheet`` is given."""
    from facebench.alignment import ALIGNED_FOLDER, AlignStep, default_crop_dir
    from facebench.contact_sheet import write_contact_sheets
    from facebench.extract import folder_images

    if template is not None and model is not None:
        raise ConfigError("facebench align: give --template or --model, not both")
    template = template or (model_template(model) if model else "crop")
    root = images_folder(dataset, data_dir)
    names = folder_images(root)
    cache = Path(cache_dir) / ALIGNED_FOLDER if cache_dir else default_crop_dir()
    step = AlignStep(template, on_no_face="center-crop", cache_dir=cache)
    by_path = step.align_files([root / name for name in names], progress=progress)
    crops = {name: by_path[str(root / name)] for name in names}
    sheets = write_contact_sheets(list(crops.items()), sheet) if sheet else []
    return AlignReport(root, template, crops, cache, sheets)
