"""Tiny copies of the standard layouts (fixture text files + generated images), .bin packs and a
local HTTP server; datasets are looked for and converted only under the test's folder."""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

FIXTURES = Path(__file__).parent.parent / "fixtures" / "datasets"


@pytest.fixture(autouse=True)
def _isolated_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("FACEBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("FACEBENCH_DATASETS_URL", raising=False)


def face_bytes(identity: str, view: int, suffix: str = ".jpg") -> bytes:
    """A small image: one pattern per identity, a little noise per view."""
    seed = int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16)
    base = np.random.default_rng(seed).integers(0, 256, (6, 6, 3)).astype(float)
    noisy = np.clip(base + np.random.default_rng(seed + view).normal(0, 15, base.shape), 0, 255)
    image = Image.fromarray(noisy.astype(np.uint8)).resize((24, 24), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if suffix == ".jpg" else "PNG")
    return buffer.getvalue()


def write_faces(folder: Path, names: list[str], identity_of) -> None:
    for view, name in enumerate(sorted(set(names))):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(face_bytes(identity_of(name), view))


def lfw_names(pairs: pd.DataFrame) -> list[str]:
    return list(pd.unique(pairs[["img1", "img2"]].to_numpy().ravel()))


@pytest.fixture
def lfw_copy(tmp_path: Path) -> Path:
    """LFW's layout: pairs.txt (2 folds) and lfw/<name>/<name>_000i.jpg."""
    from facebench.pair_maker import read_lfw_pairs

    root = tmp_path / "lfw-copy"
    root.mkdir()
    shutil.copy(FIXTURES / "lfw" / "pairs.txt", root / "pairs.txt")
    write_faces(root / "lfw", lfw_names(read_lfw_pairs(root / "pairs.txt")), lambda n: n.split("/")[0])
    return root


@pytest.fixture
def calfw_copy(tmp_path: Path) -> Path:
    root = tmp_path / "calfw-copy"
    root.mkdir()
    shutil.copy(FIXTURES / "calfw" / "pairs_CALFW.txt", root / "pairs_CALFW.txt")
    names = [line.split()[0] for line in (root / "pairs_CALFW.txt").read_text().splitlines()]
    write_faces(root / "aligned images", names, lambda n: n.rsplit("_", 1)[0])
    return root


@pytest.fixture
def cfp_copy(tmp_path: Path) -> Path:
    root = tmp_path / "cfp-copy"
    shutil.copytree(FIXTURES / "cfp-fp", root)
    names = []
    for listing in ("Pair_list_F.txt", "Pair_list_P.txt"):
        for line in (root / "Protocol" / listing).read_text().splitlines():
            names.append(line.split()[1].removeprefix("../Data/Images/"))
    write_faces(root / "Data" / "Images", names, lambda n: n.split("/")[0])
    return root


def pack_bytes(pairs: int = 20, issame: object = None) -> tuple[bytes, list[bytes], list[bool]]:
    """A .bin pack of ``pairs`` pairs (alternating same / different), pickled as InsightFace does."""
    labels = [k % 2 == 0 for k in range(pairs)]
    images = []
    for k, same in enumerate(labels):
        images.append(face_bytes(f"id{k}", 0))
        images.append(face_bytes(f"id{k}" if same else f"other{k}", 1, ".png" if k == 3 else ".jpg"))
    data = (images, labels if issame is None else issame)
    return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL), images, labels


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A folder served on 127.0.0.1: (base URL, folder, requested paths)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []

    class Handler(_Handler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, requests
    finally:
        server.shutdown()
        server.server_close()
