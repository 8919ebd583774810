"""Fetching a dataset from a local HTTP server: checksums verified, archives unpacked, mirrors."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from facebench import DatasetFile, DatasetSpec
from facebench.datasets import dataset_root, fetch, load_dataset, verify_copy
from facebench.errors import ConfigError, DataError


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _serve_lfw(lfw_copy: Path, served: Path) -> tuple[str, str]:
    """lfw.tgz (the images folder) and pairs.txt in ``served``; their SHA-256."""
    with tarfile.open(served / "lfw.tgz", "w:gz") as archive:
        archive.add(lfw_copy / "lfw", arcname="lfw")
    (served / "pairs.txt").write_bytes((lfw_copy / "pairs.txt").read_bytes())
    return _sha256(served / "lfw.tgz"), _sha256(served / "pairs.txt")


def _spec(url: str, archive_sha: str, pairs_sha: str) -> DatasetSpec:
    return DatasetSpec(
        "lfw-test",
        "facebench_tasks.datasets:read_lfw",
        files=(
            DatasetFile("pairs.txt", pairs_sha, f"{url}/pairs.txt"),
            DatasetFile("lfw.tgz", archive_sha, f"{url}/lfw.tgz", unpack=True),
        ),
    )


def test_fetch_verifies_unpacks_and_reads(http_folder, lfw_copy: Path, tmp_path: Path) -> None:
    url, served, requests = http_folder
    spec = _spec(url, *_serve_lfw(lfw_copy, served))
    root = tmp_path / "data" / "lfw-test"
    fetch(spec, root)
    assert sorted(requests) == ["/lfw.tgz", "/pairs.txt"]
    data = load_dataset(spec, root, tmp_path / "work")
    original = sorted(p.relative_to(lfw_copy / "lfw") for p in (lfw_copy / "lfw").rglob("*.jpg"))
    assert sorted(p.relative_to(data.images) for p in data.images.rglob("*.jpg")) == original
    assert len(pd.read_csv(data.pairs)) == 8
    fetch(spec, root)  # already there with the right checksums: nothing is downloaded again
    assert len(requests) == 2
    assert verify_copy(spec, root) == {"pairs.txt": True}  # the archive is unpacked, not checked again


def test_corrupted_file_is_refused_and_not_kept(http_folder, lfw_copy: Path, tmp_path: Path) -> None:
    url, served, _ = http_folder
    archive_sha, pairs_sha = _serve_lfw(lfw_copy, served)
    (served / "pairs.txt").write_text("10\t300\n")  # not the file the checksum names
    root = tmp_path / "lfw-test"
    with pytest.raises(DataError, match=r"pairs.txt from .* is not the expected file"):
        fetch(_spec(url, archive_sha, pairs_sha), root)
    assert not (root / "pairs.txt").exists()


def test_missing_file_says_where_it_looked(http_folder, tmp_path: Path) -> None:
    url, _, _ = http_folder
    with pytest.raises(DataError, match=r"could not download pairs.txt from http://127.0.0.1.*/pairs.txt"):
        fetch(_spec(url, "0" * 64, "0" * 64), tmp_path / "lfw-test")


def test_base_url_mirror_replaces_the_spec_urls(http_folder, lfw_copy, tmp_path, monkeypatch) -> None:
    url, served, requests = http_folder
    spec = _spec("http://unreachable.invalid/lfw", *_serve_lfw(lfw_copy, served))
    monkeypatch.setenv("FACEBENCH_DATASETS_URL", url + "/")
    fetch(spec, tmp_path / "lfw-test")
    assert sorted(requests) == ["/lfw.tgz", "/pairs.txt"]


def test_dataset_without_url_says_where_to_request_it(tmp_path: Path) -> None:
    spec = DatasetSpec("calfw-test", "facebench_tasks.datasets:read_calfw", request="http://whdeng.cn/CALFW/")
    with pytest.raises(ConfigError, match=r"cannot be fetched .*request it at http://whdeng.cn/CALFW/"):
        fetch(spec, tmp_path / "calfw")
    with pytest.raises(ConfigError, match=r"cannot be fetched .*Put your copy at"):
        load_dataset(spec, tmp_path / "calfw")


def test_copy_is_found_by_path_data_dir_or_environment(tmp_path: Path, monkeypatch) -> None:
    assert dataset_root("lfw", tmp_path / "mine", tmp_path / "all") == tmp_path / "mine"
    assert dataset_root("lfw", None, tmp_path / "all") == tmp_path / "all" / "lfw"
    monkeypatch.setenv("FACEBENCH_DATA_DIR", str(tmp_path / "env"))
    assert dataset_root("lfw") == tmp_path / "env" / "lfw"
    monkeypatch.delenv("FACEBENCH_DATA_DIR")
    assert dataset_root("lfw") == tmp_path / "xdg-data" / "facebench" / "datasets" / "lfw"


def test_fetch_command(http_folder, lfw_copy: Path, tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from facebench.cli import main
    from facebench.registry import Entry, Registry, get_registry

    url, served, _ = http_folder
    base = get_registry()
    registry = Registry(plugins=base.plugins)
    registry.add(
        Entry("dataset", _spec("http://unreachable.invalid", *_serve_lfw(lfw_copy, served)), "t", "0")
    )
    monkeypatch.setattr("facebench.cli.get_registry", lambda: registry)
    args = ["fetch", "lfw-test", "--data-dir", str(tmp_path / "data"), "--base-url", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'data' / 'lfw-test' / 'pairs.txt'}: checksum verified" in result.output
    assert (tmp_path / "data" / "lfw-test" / "lfw" / "Zico" / "Zico_0001.jpg").is_file()
    missing = CliRunner().invoke(
        main, ["fetch", "lfw-test", "--path", str(tmp_path / "x"), "--base-url", url + "/no"]
    )
    assert missing.exit_code == 2 and "could not download pairs.txt" in missing.output
