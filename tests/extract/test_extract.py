"""facebench extract: every format reads back the cached features exactly; RDMs load in rsatoolbox
and equal its own; the output folder is replaced whole or not at all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import facebench.layer_view as layer_view
from facebench.cli import main
from facebench.engine import embed_images
from facebench.errors import ConfigError
from facebench.extract import IMAGES_FILE, MANIFEST_FILE, extract_features
from facebench.feature_files import FORMATS, read_features
from facebench.registry import Entry, ModelSpec, Registry, get_registry
from facebench.store import EmbeddingStore
from facebench.tiny_data import write_images
from facebench.tiny_model import TinyConvNet


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "faces"
    return folder, write_images(folder, identities=3, per_identity=4)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddingStore:
    with EmbeddingStore(tmp_path / "cache") as opened:
        yield opened


def tiny(name: str = "tiny", seed: int = 0) -> TinyConvNet:
    return TinyConvNet(name=name, extract_layers=["conv", "fc"], seed=seed)


def cached(
    model: TinyConvNet, folder: Path, names: list[str], store: EmbeddingStore, layer: str
) -> np.ndarray:
    embeddings = embed_images(model, [folder / n for n in names], store=store, progress=False)
    assert embeddings.computed == 0  # read back from the store, not recomputed
    return embeddings.vectors(layer, [folder / n for n in names])


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_reads_back_exactly_the_cached_features(
    fmt: str, images, store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, names = images
    monkeypatch.setattr(layer_view, "DEFAULT_CHUNK_BYTES", 5000)  # conv: one row per block
    result = extract_features([tiny()], folder, tmp_path / "out", fmt, store=store, progress=False)
    out = tmp_path / "out"
    assert (out / IMAGES_FILE).read_text().splitlines() == names == result.images
    assert result.computed == {"tiny": len(names)}
    for layer in ("conv", "fc"):
        file_names, features = read_features(out / "tiny" / f"{layer}{FORMATS[fmt]}")
        assert file_names == names
        assert features.dtype == np.float32
        np.testing.assert_array_equal(features, cached(tiny(), folder, names, store, layer))
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["format"] == fmt and manifest["image_count"] == len(names)
    assert manifest["models"][0]["layers"]["conv"]["dim"] == 6 * 14 * 14
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert pq.ParquetFile(out / "tiny" / "conv.parquet").num_row_groups == len(names)  # streamed


def test_a_table_keeps_its_order_and_subset(images, store, tmp_path: Path) -> None:
    folder, names = images
    chosen = names[::-2]
    (tmp_path / "t.csv").write_text("image\n" + "\n".join(chosen) + "\n")
    runner = CliRunner()
    registry = tiny_registry()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("facebench.registry.get_registry", lambda: registry)
        outcome = runner.invoke(
            main,
            ["extract", "--model", "tiny", "--layers", "fc", "--images", str(folder), "--table",
             str(tmp_path / "t.csv"), "--output", str(tmp_path / "out"), "--format", "hdf5",
             "--cache-dir", str(store.root), "--quiet"],
        )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert "for 6 images" in outcome.output
    file_names, features = read_features(tmp_path / "out" / "tiny" / "fc.h5")
    assert file_names == chosen
    model = TinyConvNet(name="tiny", extract_layers=["fc"])
    np.testing.assert_array_equal(features, cached(model, folder, chosen, store, "fc"))


def tiny_registry() -> Registry:
    base = get_registry()
    fresh = Registry(plugins=base.plugins)
    for kind in ("task", "metric", "executor"):
        for entry in base.entries(kind):
            fresh.add(entry)
    fresh.add(Entry("model", ModelSpec("tiny", TinyConvNet, "tiny test network"), "facebench-tests", "0"))
    return fresh


def test_rdms_load_in_rsatoolbox_and_equal_its_own(images, store, tmp_path: Path) -> None:
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, load_rdm

    folder, names = images
    model = tiny()
    for metric in ("rsatoolbox:euclidean", "rsatoolbox:correlation", "correlation", "euclidean"):
        out = tmp_path / metric.replace(":", "-")
        extract_features([model], folder, out, "npy", rdm=metric, store=store, progress=False)
        features = np.load(out / "tiny" / "conv.npy").astype(np.float64)
        loaded = load_rdm(str(out / "rdms" / "tiny" / "conv.hdf5"))
        assert list(loaded.pattern_descriptors["image"]) == names
        assert list(loaded.rdm_descriptors["layer"]) == ["conv"]
        method = metric.removeprefix("rsatoolbox:")
        reference = calc_rdm(Dataset(features), method=method).dissimilarities[0]
        if metric == "euclidean":  # facebench's plain L2 against rsatoolbox's squared L2 over D
            reference = np.sqrt(reference * features.shape[1])
        np.testing.assert_allclose(loaded.dissimilarities[0], reference, rtol=0, atol=1e-10)


def test_the_output_is_replaced_whole_or_not_at_all(
    images, store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = images
    out = tmp_path / "out"
    extract_features([tiny()], folder, out, "npy", store=store, progress=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("facebench.extract.write_features", disk_full)
    with pytest.raises(OSError) as failure:
        extract_features([tiny(seed=1)], folder, out, "npy", store=store, progress=False)
    assert "nothing was written" in "".join(failure.value.__notes__)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no staging left

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"no extract\.json"):
        extract_features([tiny()], folder, tmp_path / "other", "npy", store=store, progress=False)
    with pytest.raises(ConfigError, match="two models are named 'tiny'"):
        extract_features([tiny(), tiny(seed=1)], folder, tmp_path / "x", "npy", store=store)


@pytest.mark.parametrize(("fmt", "module"), [("hdf5", "h5py"), ("parquet", "pyarrow")])
def test_a_missing_optional_library_says_what_to_install(
    fmt: str, module: str, images, store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = images
    monkeypatch.setitem(sys.modules, module, None)  # import fails as when not installed
    with pytest.raises(ConfigError, match=rf"--format {fmt} needs {module}.*facebench-core\[extract\]"):
        extract_features([tiny()], folder, tmp_path / "out", fmt, store=store, progress=False)
    assert not (tmp_path / "out").exists()
    monkeypatch.setitem(sys.modules, "rsatoolbox", None)
    with pytest.raises(ConfigError, match="rsatoolbox, which is not installed"):
        extract_features([tiny()], folder, tmp_path / "out", "npy", rdm="cosine", store=store)
    with pytest.raises(ConfigError, match="rsatoolbox methods offered"):
        extract_features([tiny()], folder, tmp_path / "out", "npy", rdm="rsatoolbox:crossnobis", store=store)
