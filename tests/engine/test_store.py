"""EmbeddingStore: round trips, persistence, atomic chunks, temporary stores."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.store import EmbeddingStore, atomic_write, safe_name


def rows(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_rows_round_trip_across_chunks_and_store_instances(tmp_path):
    first, second = rows(3, 5, 0), rows(2, 5, 1)
    with EmbeddingStore(tmp_path) as store:
        table = store.table("model-id", "features.3", "flatten")
        table.write(["a", "b", "c"], first)
        table.write(["d", "e"], second)
        assert len(table) == 5 and table.dim == 5
    with EmbeddingStore(tmp_path) as store:  # a new process would see the same
        table = store.table("model-id", "features.3", "flatten")
        assert table.missing(["e", "x", "a", "y"]) == ["x", "y"]
        np.testing.assert_array_equal(
            table.read(["e", "a", "a", "c"]), np.stack([second[1], first[0], first[0], first[2]])
        )
        assert len(store.table("model-id", "features.3", "mean")) == 0
        assert len(store.table("other-id", "features.3", "flatten")) == 0


def test_float16_store_keeps_values_to_half_precision(tmp_path):
    data = rows(4, 8, 2)
    with EmbeddingStore(tmp_path, dtype="float16") as store:
        table = store.table("m", "fc", "flatten")
        table.write(list("abcd"), data)
        out = table.read(list("abcd"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, data, rtol=1e-3, atol=1e-3)
    with EmbeddingStore(tmp_path) as store:  # float32 entries are a separate table
        assert len(store.table("m", "fc", "flatten")) == 0


def test_no_cache_store_is_deleted_on_close():
    store = EmbeddingStore(None)
    store.table("m", "fc", "flatten").write(["a"], rows(1, 3, 0))
    root = store.root
    assert any(root.rglob("*.npy"))
    store.close()
    assert not root.exists()


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "chunk.npy"

    def half_write(handle):
        handle.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_write)
    assert list(tmp_path.iterdir()) == []


def test_leftover_temporary_files_are_never_read(tmp_path):
    with EmbeddingStore(tmp_path) as store:
        table = store.table("m", "fc", "flatten")
        table.write(["a"], rows(1, 3, 0))
        (table.folder / ".tmp-123-x.npy").write_bytes(b"half written")
    with EmbeddingStore(tmp_path) as store:
        assert store.table("m", "fc", "flatten").missing(["a", "b"]) == ["b"]


def test_mismatched_widths_and_row_counts_are_refused(tmp_path):
    with EmbeddingStore(tmp_path) as store:
        table = store.table("m", "fc", "flatten")
        table.write(["a"], rows(1, 3, 0))
        with pytest.raises(ValueError, match="width 3"):
            table.write(["b"], rows(1, 4, 0))
        with pytest.raises(ValueError, match="expected 2 rows"):
            table.write(["b", "c"], rows(1, 3, 0))


def test_layer_names_become_safe_folder_names():
    assert safe_name("features.30") == "features.30"
    assert safe_name("visual/blocks:0") == "visual%2Fblocks%3A0"


def test_an_unreadable_chunk_is_skipped_with_a_warning(tmp_path):
    with EmbeddingStore(tmp_path) as store:
        table = store.table("m", "fc", "flatten")
        table.write(["a"], rows(1, 3, 0))
        (table.folder / "0-emptied-by-a-power-cut.npy").write_bytes(b"")
    with EmbeddingStore(tmp_path) as store, pytest.warns(RuntimeWarning, match="power-cut"):
        assert store.table("m", "fc", "flatten").missing(["a", "b"]) == ["b"]
