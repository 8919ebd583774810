"""Ray faults: an address where nothing answers fails fast and clearly; ``ray://`` needs the client
the ``[ray]`` extra installs; a killed run leaves no Ray process behind."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import pytest

from facebench.errors import ConfigError

pytest.importorskip("ray", reason="Ray is not installed (pip install 'facebench-core[ray]')")

from facebench.executors import ray_reaper
from facebench.executors.ray import RayExecutor

ROOT = Path(__file__).resolve().parents[2]


def test_an_address_where_nothing_answers_fails_within_seconds() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ConfigError, match=rf"nothing answers at '127.0.0.1:{port}'.*ray start --head"):
        RayExecutor(address=f"127.0.0.1:{port}")
    assert time.monotonic() - start < 30
    with pytest.raises(ConfigError, match=r"not HOST:PORT, ray://HOST:PORT or auto"):
        RayExecutor(address="my-cluster")


def test_a_ray_client_address_needs_the_client_the_extra_installs(monkeypatch) -> None:
    extras = tomllib.loads((ROOT / "facebench-core" / "pyproject.toml").read_text())["project"]
    ray_extra = extras["optional-dependencies"]["ray"]
    assert any(req.startswith("ray[") and "client" in req.split("]")[0] for req in ray_extra), ray_extra
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else find_spec(name, *a)
    )
    with pytest.raises(ConfigError, match=r"needs Ray's client \(ray\[client\]\).*facebench-core\[ray\]"):
        RayExecutor(address="ray://127.0.0.1:10001")


DRIVER = """
import sys, time
from pathlib import Path
import numpy as np
from PIL import Image
from facebench.engine import embed_images
from facebench.executors.ray import RayExecutor
from facebench.store import EmbeddingStore
from facebench.testing import TinyConvNet


class Slow(TinyConvNet):
    def _forward(self, tensor):
        time.sleep(0.3)
        return self.model(tensor)


folder = Path(sys.argv[1])
paths = []
for i in range(200):
    path = folder / f"{i}.png"
    Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    paths.append(path)
store = EmbeddingStore(folder / "cache")
executor = RayExecutor(num_actors=1)
embed_images(Slow(device="cpu"), paths, store=store, batch_size=2, executor=executor, progress=False)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the reaper reads /proc (Linux)")
def test_a_killed_ray_run_leaves_no_ray_process(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    env = {**os.environ, "RAY_DISABLE_IMPORT_WARNING": "1"}
    driver = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "cache").rglob("*.npy")):  # the actor has embedded a batch
            assert driver.poll() is None and time.monotonic() < deadline, "the Ray run did not start"
            time.sleep(0.5)
        ray_processes = [pid for pid in ray_reaper.descendants(driver.pid) if ray_reaper.is_ray(pid)]
        assert ray_processes, "no Ray process found below the driver"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 15
        while (alive := [pid for pid in ray_processes if _alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive, f"Ray processes left after the run was killed: {alive}"
    finally:
        if driver.poll() is None:
            driver.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
