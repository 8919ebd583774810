"""Cache faults: a full or read-only cache folder, unreadable chunks, corrupted bytes."""

from __future__ import annotations

import errno
import os
import warnings

import numpy as np
import pytest

from facebench.engine import embed_images
from facebench.errors import ConfigError
from facebench.store import EmbeddingStore


def rows(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def failing_write(code: int):
    def write(path, _write):
        raise OSError(code, os.strerror(code), str(path.with_name(".tmp-x-" + path.name)))

    return write


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"), (errno.EACCES, "permission denied")],
)
def test_a_cache_write_failure_names_the_folder_and_the_way_out(tmp_path, monkeypatch, code, words):
    monkeypatch.setattr("facebench.store.atomic_write", failing_write(code))
    with EmbeddingStore(tmp_path / "cache") as store:
        table = store.table("m", "fc", "flatten")
        with pytest.raises(ConfigError) as caught:
            table.write(["a"], rows(1, 3, 0))
        message = str(caught.value)
        assert str(tmp_path / "cache") in message and words in message
        assert "--cache-dir" in message and "--no-cache" in message
        with pytest.raises(ConfigError, match="--cache-dir"):
            store.write_metadata("m", {"name": "m"})
        assert len(table) == 0


def test_numpys_short_write_message_becomes_a_sentence(tmp_path, monkeypatch):
    def short_write(path, _write):
        raise OSError("4 requested and 3 written")

    monkeypatch.setattr("facebench.store.atomic_write", short_write)
    with EmbeddingStore(tmp_path) as store, pytest.raises(ConfigError) as caught:
        store.table("m", "fc", "flatten").write(["a"], rows(1, 3, 0))
    assert str(caught.value).startswith(f"cannot write to the embedding cache {tmp_path}: 4 requested")


def test_an_unreadable_chunk_is_moved_aside_once(tmp_path):
    with EmbeddingStore(tmp_path) as store:
        table = store.table("m", "fc", "flatten")
        table.write(["a"], rows(1, 3, 0))
        bad = table.folder / "1-2-deadbeef-00000000.npy"
        bad.write_bytes(b"")
    with EmbeddingStore(tmp_path) as store, pytest.warns(RuntimeWarning, match="moved aside"):
        assert store.table("m", "fc", "flatten").missing(["a", "b"]) == ["b"]
    assert not bad.exists() and bad.with_name(bad.name + ".unreadable").exists()
    with EmbeddingStore(tmp_path) as store, warnings.catch_warnings():
        warnings.simplefilter("error")  # the second run says nothing
        assert store.table("m", "fc", "flatten").missing(["a", "b"]) == ["b"]


def flip_last_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupted_chunk_is_detected_and_its_rows_dropped(tmp_path):
    good, other = rows(2, 4, 0), rows(1, 4, 1)
    with EmbeddingStore(tmp_path) as store:
        table = store.table("m", "fc", "flatten")
        table.write(["a", "b"], good)
        table.write(["c"], other)
        first = sorted(table.folder.glob("*.npy"))[0]
    flip_last_byte(first)  # a bit flip inside b's vector: still a valid .npy file
    with EmbeddingStore(tmp_path) as store:
        table = store.table("m", "fc", "flatten")
        assert table.missing(["a", "b", "c"]) == []  # not checked until used
        with pytest.warns(RuntimeWarning, match="corrupt.*checksum"):
            table.verify(["a", "c"])
        assert table.missing(["a", "b", "c"]) == ["a", "b"]
        np.testing.assert_array_equal(table.read(["c"]), other)
    assert first.with_name(first.name + ".corrupt").exists()


def test_corrupted_embeddings_are_recomputed_not_read(tmp_path, images, tiny):
    model = tiny(extract_layers=["fc"])
    with EmbeddingStore(tmp_path / "cache") as store:
        clean = embed_images(model, images, store=store, batch_size=4, num_workers=0, progress=False)
        expected = clean.vectors("fc", images)
    for chunk in (tmp_path / "cache").rglob("*.npy"):
        flip_last_byte(chunk)
    again = tiny(extract_layers=["fc"])
    with EmbeddingStore(tmp_path / "cache") as store, pytest.warns(RuntimeWarning, match="corrupt"):
        embeddings = embed_images(again, images, store=store, batch_size=4, num_workers=0, progress=False)
        assert embeddings.computed == len(images)
        np.testing.assert_allclose(embeddings.vectors("fc", images), expected, rtol=1e-6)
