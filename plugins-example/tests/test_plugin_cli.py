"""The installed plugin, seen through the real ``facebench`` command and its entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest


def facebench(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("facebench")
    command = [executable, *args] if executable else [sys.executable, "-m", "facebench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_list_shows_the_model_task_and_metric_from_this_plugin() -> None:
    result = facebench("list", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    mine = {
        kind: {entry["name"] for entry in listing[kind] if entry["plugin"] == "facebench-example-plugin"}
        for kind in ("models", "tasks", "metrics")
    }
    assert mine == {"models": {"dlib-resnet"}, "tasks": {"retrieval"}, "metrics": {"angular"}}


def test_layers_lists_the_dlib_network() -> None:
    result = facebench("layers", "dlib-resnet")
    assert result.returncode == 0, result.stderr
    layers = result.stdout.split()
    for expected in ("input", "conv", "max_pool", "alevel4.0.conv1", "alevel0.0.shortcut", "avg_pool", "fc"):
        assert expected in layers
    # dlib's anet_type: 1 stem convolution + 14 residual blocks of 2 convolutions
    assert len([name for name in layers if name.split(".")[-1].startswith("conv")]) == 29
    assert [name for name in layers if name.count(".") == 1 and name.startswith("alevel")] == [
        *(f"alevel4.{i}" for i in range(3)),
        *(f"alevel3.{i}" for i in range(4)),
        *(f"alevel2.{i}" for i in range(3)),
        *(f"alevel1.{i}" for i in range(3)),
        "alevel0.0",
    ]


@pytest.mark.parametrize("bad", ["dlib-resnt"])
def test_unknown_model_name_suggests_this_one(bad: str) -> None:
    result = facebench("layers", bad)
    assert result.returncode != 0
    assert "dlib-resnet" in result.stderr + result.stdout
