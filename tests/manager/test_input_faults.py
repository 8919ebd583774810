"""Bad input found up front, each said once: broken model plugins, non-UTF-8 files, symlinks out
of the images folder, task names that clash as file names, and failures printed once."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from facebench.cli import main
from facebench.errors import ConfigError, DataError
from facebench.experiment import Experiment
from facebench.registry import KINDS, Entry, ModelSpec, Registry, get_registry
from facebench_tasks.accuracy import AccuracyTask


class RaisingNet:
    """A model plugin whose constructor fails (as one needing a missing GPU driver would)."""

    def __init__(self, name: str | None = None) -> None:
        raise RuntimeError("CUDA driver is too old\nsecond line of detail")


@pytest.fixture
def full_registry(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The test registry plus every installed entry it lacks (executors, ...), used by the CLI."""
    for kind in KINDS:
        have = set(registry.names(kind))
        for entry in get_registry().entries(kind):
            if entry.spec.name not in have:
                registry.add(entry)
    registry.add(Entry("model", ModelSpec("ghost", "no_such_module_xyz:Net", "not installed"), "lab-x", "1"))
    registry.add(Entry("model", ModelSpec("raising", RaisingNet, "constructor fails"), "lab-x", "1"))
    monkeypatch.setattr("facebench.experiment.get_registry", lambda: registry)
    monkeypatch.setattr("facebench.cli.get_registry", lambda: registry)
    return registry


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "ghost",
            "model 'ghost': its target 'no_such_module_xyz:Net' names the module "
            "'no_such_module_xyz', which does not exist",
        ),
        ("raising", "model 'raising' could not be created (RuntimeError: CUDA driver is too old)"),
    ],
)
def test_a_broken_model_plugin_is_one_line_and_exit_2(full_registry, stimuli, tmp_path, model, message):
    runner = CliRunner()
    layers = runner.invoke(main, ["layers", model])
    run = runner.invoke(
        main,
        [
            "run",
            "--model",
            model,
            "--task",
            "accuracy",
            "--pairs",
            str(stimuli.pairs["verification"]),
            "--images",
            str(stimuli.images),
            "--quiet",
            "--output",
            str(tmp_path / "out"),
        ],
    )
    for result in (layers, run):
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert result.output.strip().count("\n") == 0  # one line, no traceback
    assert not (tmp_path / "out").exists()


def test_each_failure_is_printed_once(full_registry, stimuli, tmp_path, monkeypatch):
    path = tmp_path / "experiment.toml"
    path.write_text(
        'cache = false\nnum_workers = 0\n[[models]]\nplugin = "tiny"\nlayers = ["fc"]\n'
        f'[[tasks]]\nplugin = "exploding"\nname = "Exploding"\n'
        f'pairs = "{stimuli.pairs["verification"]}"\nimages = "{stimuli.images}"\n'
    )
    # as in a terminal: no pytest log capture, so anything logged reaches the output
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.getLogger("facebench.manager"), "handlers", [])
    for quiet in (["--quiet"], []):
        result = CliRunner().invoke(main, ["run", str(path), *quiet])
        assert result.exit_code == 1
        assert result.output.count("boom: this task always fails") == 1, result.output


def latin1(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("latin-1"))
    return path


def test_a_pairs_file_that_is_not_utf8_says_which_and_how_to_fix(stimuli, tmp_path):
    source = stimuli.pairs["verification"].read_text(encoding="utf-8").splitlines()
    header, first = source[0], source[1]
    pairs = latin1(tmp_path / "pairs.csv", f"{header},note\n{first},José\n")
    with pytest.raises(DataError) as caught:
        AccuracyTask(pairs_file_path=pairs, images_path=stimuli.images)
    message = str(caught.value)
    assert str(pairs) in message and "is not UTF-8 text (byte 0xE9 on line 2)" in message
    assert "iconv" in message


def test_an_experiment_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = latin1(tmp_path / "experiment.toml", '# Expérience\n[[models]]\nplugin = "tiny"\n')
    with pytest.raises(ConfigError, match=r"experiment file .*experiment\.toml' is not UTF-8 text .*line 1"):
        Experiment.from_toml(path)


def test_a_symlink_out_of_the_images_folder_is_refused_like_dotdot(stimuli, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    frame = AccuracyTask(pairs_file_path=stimuli.pairs["verification"], images_path=stimuli.images).pairs_df
    for name in {*frame["img1"], *frame["img2"]}:
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        (images / name).write_bytes((stimuli.images / name).read_bytes())
    inside_link = frame["img1"].iloc[0]
    os.replace(images / inside_link, images / "real.png")
    (images / inside_link).symlink_to(images / "real.png")  # stays inside: fine
    AccuracyTask(pairs_file_path=stimuli.pairs["verification"], images_path=images)
    escaping = frame["img2"].iloc[0]
    os.replace(images / escaping, outside / "face.png")
    (images / escaping).symlink_to(outside / "face.png")
    with pytest.raises(
        DataError, match=r"symbolic links .* leading outside the images folder.*refused like '\.\.'"
    ):
        AccuracyTask(pairs_file_path=stimuli.pairs["verification"], images_path=images)


def test_task_names_that_clash_as_file_names_are_refused_up_front(use_registry, stimuli, tmp_path, tiny_net):
    tasks = "".join(
        f'[[tasks]]\nplugin = "accuracy"\nname = "{name}"\npairs = "{stimuli.pairs["verification"]}"\n'
        f'images = "{stimuli.images}"\n'
        for name in ("Upright faces", "Upright_faces")
    )
    path = tmp_path / "clash.toml"
    path.write_text('[[models]]\nplugin = "tiny"\n' + tasks)
    with pytest.raises(ConfigError, match="'Upright faces' and 'Upright_faces' both become the file name"):
        Experiment.from_toml(path).check(use_registry)
    assert tiny_net.constructed == 0


def test_sigterm_stops_the_cli_with_143_after_exporting(full_registry, stimuli, tmp_path, tiny_net):
    def kill_self(self, tensor):
        os.kill(os.getpid(), signal.SIGTERM)

    stopped = type("StoppedNet", (tiny_net,), {"_forward": kill_self})
    full_registry.add(Entry("model", ModelSpec("stopped", stopped, "sends SIGTERM"), "lab-x", "1"))

    def guard(signum, frame):
        raise RuntimeError("SIGTERM reached the test's own handler: the run did not handle it")

    previous = signal.signal(signal.SIGTERM, guard)
    try:
        args = ["run", "--model", "tiny", "--model", "stopped", "--task", "accuracy", "--no-cache"]
        args += ["--pairs", str(stimuli.pairs["verification"]), "--images", str(stimuli.images)]
        result = CliRunner().invoke(main, [*args, "--quiet", "--output", str(tmp_path / "out")])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 143, result.output
    assert f"Stopped by SIGTERM; results finished so far are in {tmp_path / 'out'}" in result.output
    assert json.loads((tmp_path / "out" / "results.json").read_text())["status"] == "interrupted"


def test_the_cli_says_where_an_incomplete_rerun_went(full_registry, stimuli, tmp_path, monkeypatch):
    args = ["run", "--model", "tiny", "--task", "accuracy", "--no-cache", "--quiet"]
    args += ["--pairs", str(stimuli.pairs["verification"]), "--images", str(stimuli.images)]
    args += ["--output", str(tmp_path / "out")]
    assert CliRunner().invoke(main, args).exit_code == 0

    def disk_full(self, path=None, *rest, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert f"This run is incomplete (export failed); {tmp_path / 'out'} keeps the previous" in result.output
    assert "no space left on the device" in result.output
    assert json.loads((tmp_path / "out" / "results.json").read_text())["status"] == "completed"
