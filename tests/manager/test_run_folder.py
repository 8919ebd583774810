"""One whole run per output folder; output and image problems found before any model is built;
write failures named; a bad image fails only the tasks that use it; SIGTERM exports like Ctrl-C."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebench.errors import ConfigError, DataError
from facebench.interrupt import Terminated
from facebench.manager import MultiModelTaskManager
from facebench.report import write_report
from facebench.results import RESULTS_JSON_FILE
from facebench_tasks.accuracy import AccuracyTask

PAIRS = [(0, 1, 1), (2, 3, 1), (0, 2, 0), (1, 3, 0), (0, 3, 0), (1, 2, 0), (2, 0, 0), (3, 1, 1)]


def make_images(folder: Path, prefix: str, count: int = 4) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        pixels = np.random.default_rng(hash((prefix, i)) % 2**32).integers(
            0, 256, (32, 32, 3), dtype=np.uint8
        )
        Image.fromarray(pixels).save(folder / f"{prefix}{i}.png")
        names.append(f"{prefix}{i}.png")
    return names


def write_pairs(path: Path, names: list[str]) -> Path:
    rows = [{"img1": names[a], "img2": names[b], "truth": t} for a, b, t in PAIRS]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """images/a0..a3.png (task A's) and b0..b3.png (task B's), and their pairs files."""
    images = tmp_path / "images"
    write_pairs(tmp_path / "a.csv", make_images(images, "a"))
    write_pairs(tmp_path / "b.csv", make_images(images, "b"))
    return tmp_path


def tasks(data: Path, names: tuple[str, ...] = ("A", "B")) -> list[AccuracyTask]:
    return [
        AccuracyTask(
            name=name, pairs_file_path=data / f"{name.lower()}.csv", images_path=data / "images", n_folds=2
        )
        for name in names
    ]


def manager(models, task_list) -> MultiModelTaskManager:
    return MultiModelTaskManager(
        models=models, tasks=task_list, batch_size=4, cache_dir=None, num_workers=0, progress=False
    )


def run(models, task_list, out: Path) -> MultiModelTaskManager:
    with manager(models, task_list) as m:
        m.run_all_tasks_all_models(export_path=out, plots=False)
    return m


def document(folder: Path) -> dict:
    return json.loads((folder / RESULTS_JSON_FILE).read_text())


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- item 8: one whole run per folder
def test_a_rerun_with_results_replaces_the_whole_folder_not_half_of_it(data, tmp_path, tiny_net):
    out = tmp_path / "out"
    run([tiny_net(name="tiny")], tasks(data), out)
    assert (out / "performance" / "B.csv").is_file()
    second = run([tiny_net(name="tiny", seed=2)], tasks(data, ("A",)), out)
    assert document(out)["status"] == "completed"
    assert second.output_folder == out
    listed = set(document(out)["files"]) | {RESULTS_JSON_FILE}
    assert files_in(out) == listed  # the manifest lists every file, and nothing is left over
    assert not (out / "performance" / "B.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no hidden leftovers


def fail_on_forward(model) -> None:
    def fail(tensor):
        raise RuntimeError("CUDA error: device lost")

    model._forward = fail


def test_a_rerun_whose_models_all_fail_is_kept_beside_the_complete_run(data, tmp_path, tiny_net):
    out = tmp_path / "out"
    run([tiny_net(name="tiny")], tasks(data), out)
    before = {name: (out / name).read_bytes() for name in files_in(out)}
    broken = tiny_net(name="tiny", seed=2)
    fail_on_forward(broken)
    second = run([broken], tasks(data, ("A",)), out)
    assert {name: (out / name).read_bytes() for name in files_in(out)} == before
    assert second.status == "failed" and second.output_folder.name.startswith("out.failed-")
    assert document(second.output_folder)["status"] == "failed"
    assert "device lost" in document(second.output_folder)["failures"][0]["error"]


def test_a_first_run_with_no_result_is_the_output_folder_and_says_failed(data, tmp_path, tiny_net):
    broken = tiny_net(name="tiny")
    fail_on_forward(broken)
    m = run([broken], tasks(data), tmp_path / "out")
    assert m.output_folder == tmp_path / "out" and document(m.output_folder)["status"] == "failed"


def test_a_run_stopped_by_an_error_is_failed_and_kept_beside(data, tmp_path, tiny_net, monkeypatch):
    out = tmp_path / "out"
    run([tiny_net(name="tiny")], tasks(data), out)

    def broken(self):
        raise MemoryError("out of memory in an analysis")

    monkeypatch.setattr(MultiModelTaskManager, "run_analyses", broken)
    with pytest.raises(MemoryError) as caught:
        run([tiny_net(name="tiny", seed=4)], tasks(data), out)
    assert document(out)["status"] == "completed"
    [beside] = [p for p in tmp_path.iterdir() if p.name.startswith("out.failed-")]
    assert document(beside)["status"] == "failed"
    assert document(beside)["failures"][-1]["stage"] == "run"
    assert str(beside) in caught.value.__notes__[0]


def interrupt_on_forward(model) -> None:
    def interrupt(tensor):
        raise KeyboardInterrupt

    model._forward = interrupt


def test_an_interrupted_rerun_keeps_the_completed_run_and_goes_beside_it(data, tmp_path, tiny_net):
    out = tmp_path / "out"
    run([tiny_net(name="tiny")], tasks(data), out)
    before = {name: (out / name).read_bytes() for name in files_in(out)}
    model = tiny_net(name="other", seed=3)
    interrupt_on_forward(model)
    with pytest.raises(KeyboardInterrupt) as caught:
        run([tiny_net(name="first", seed=5), model], tasks(data), out)
    assert {name: (out / name).read_bytes() for name in files_in(out)} == before
    beside = [p for p in tmp_path.iterdir() if p.name.startswith("out.interrupted-")]
    assert len(beside) == 1
    assert document(beside[0])["status"] == "interrupted"
    assert {m["model"] for m in document(beside[0])["metrics"]} == {"first"}
    assert str(beside[0]) in caught.value.__notes__[0]


def test_an_interrupted_first_run_becomes_the_output_folder(data, tmp_path, tiny_net):
    model = tiny_net(name="tiny")
    interrupt_on_forward(model)
    with pytest.raises(KeyboardInterrupt):
        run([model], tasks(data), tmp_path / "out")
    assert document(tmp_path / "out")["status"] == "interrupted"


def test_a_folder_of_other_files_is_refused_before_any_model_is_built(data, tmp_path, tiny_net):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match=r"holds files but no results\.json written by facebench"):
        run([tiny_net(name="tiny")], tasks(data), tmp_path / "mine")
    assert tiny_net.built == 0
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_a_results_json_facebench_did_not_write_is_not_a_run(data, tmp_path, tiny_net):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / RESULTS_JSON_FILE).write_text('{"my": "own results"}')
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(ConfigError, match=r"no results\.json written by facebench"):
        run([tiny_net(name="tiny")], tasks(data), tmp_path / "mine")
    assert (tmp_path / "mine" / RESULTS_JSON_FILE).read_text() == '{"my": "own results"}'
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_files_the_run_did_not_write_are_listed_and_never_deleted(data, tmp_path, tiny_net):
    out = tmp_path / "out"
    run([tiny_net(name="tiny")], tasks(data), out)
    (out / "notes.txt").write_text("precious")
    (out / "plots" / "draft").mkdir(parents=True)
    (out / "plots" / "draft" / "chapter.tex").write_text("thesis")
    with pytest.raises(ConfigError) as caught:
        run([tiny_net(name="tiny", seed=2)], tasks(data), out)
    assert "holds 2 file(s) facebench did not write: notes.txt, plots/draft/chapter.tex" in str(caught.value)
    assert (out / "notes.txt").read_text() == "precious"
    assert (out / "plots" / "draft" / "chapter.tex").read_text() == "thesis"


def test_a_report_rebuilt_by_facebench_report_is_not_a_foreign_file(data, tmp_path, tiny_net):
    out = tmp_path / "out"
    run([tiny_net(name="tiny")], tasks(data), out)
    (out / "report.html").unlink()
    edit = document(out)
    edit["files"].remove("report.html")  # as after a run whose report failed
    (out / RESULTS_JSON_FILE).write_text(json.dumps(edit))
    write_report(out)
    second = run([tiny_net(name="tiny", seed=2)], tasks(data), out)
    assert second.output_folder == out and document(out)["status"] == "completed"


def test_a_file_added_during_the_run_keeps_the_new_run_beside(data, tmp_path, tiny_net, monkeypatch):
    out = tmp_path / "out"
    run([tiny_net(name="tiny")], tasks(data), out)
    original = MultiModelTaskManager.run_analyses

    def add_a_note(self):
        (out / "notes.txt").write_text("written while the run was running")
        return original(self)

    monkeypatch.setattr(MultiModelTaskManager, "run_analyses", add_a_note)
    m = run([tiny_net(name="tiny", seed=2)], tasks(data), out)
    assert (out / "notes.txt").read_text() == "written while the run was running"
    assert m.output_folder.name.startswith("out.completed-")
    assert document(m.output_folder)["status"] == "completed"


# ---------------------------------------------------------------- item 9: output problems
def test_an_output_under_a_file_is_refused_before_any_model_is_built(data, tmp_path, tiny_net):
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(ConfigError, match=r"taken is a file"):
        run([tiny_net(name="tiny")], tasks(data), tmp_path / "taken" / "out")
    with pytest.raises(ConfigError, match=r"is a file"):
        run([tiny_net(name="tiny")], tasks(data), tmp_path / "taken")
    assert tiny_net.built == 0


def test_a_read_only_output_is_refused_before_any_model_is_built(data, tmp_path, tiny_net, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("facebench.filesystem.tempfile.mkdtemp", read_only)
    with pytest.raises(ConfigError, match=r"cannot write the results to .*out: .*read-only.*--output"):
        run([tiny_net(name="tiny")], tasks(data), tmp_path / "out")
    assert tiny_net.built == 0


def disk_full_for(part: str, monkeypatch) -> None:
    original = pd.DataFrame.to_csv

    def to_csv(self, path=None, *args, **kwargs):
        if part in str(path):
            Path(path).write_text("half a fi")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)


def test_a_full_disk_mid_export_is_named_and_the_status_says_so(data, tmp_path, tiny_net, monkeypatch):
    disk_full_for("distances", monkeypatch)
    m = run([tiny_net(name="tiny")], tasks(data), tmp_path / "out")
    out = tmp_path / "out"
    assert m.status == "export failed" and document(out)["status"] == "export failed"
    [failure] = [f for f in m.failures if f.stage == "export"]
    assert "cannot write " in failure.error and "no space left on the device" in failure.error
    assert str(out / "distances" / "tiny") in failure.error and ".tmp" not in failure.error
    assert ".out.facebench-" not in failure.error + failure.traceback  # not the hidden folder
    pd.read_csv(out / "performance" / "A.csv")  # what was written is whole
    assert not list(out.rglob("*.tmp")) and not list((out / "distances").rglob("*.csv"))


def test_a_full_disk_on_a_rerun_keeps_the_previous_complete_run(data, tmp_path, tiny_net, monkeypatch):
    out = tmp_path / "out"
    run([tiny_net(name="tiny")], tasks(data), out)
    started = document(out)["started_at"]
    disk_full_for("performance", monkeypatch)
    m = run([tiny_net(name="tiny")], tasks(data), out)
    assert document(out)["started_at"] == started and document(out)["status"] == "completed"
    assert m.output_folder.name.startswith("out.export-failed-")
    assert document(m.output_folder)["status"] == "export failed"


# ---------------------------------------------------------------- item 10: images
def test_every_undecodable_image_is_listed_before_any_model_is_built(data, tmp_path, tiny_net):
    (data / "images" / "a1.png").write_bytes(b"not a png")
    whole = (data / "images" / "b2.png").read_bytes()
    (data / "images" / "b2.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as caught:
        run([tiny_net(name="tiny")], tasks(data), tmp_path / "out")
    message = str(caught.value)
    assert message.startswith("2 of 8 images cannot be decoded")
    assert "a1.png" in message and "b2.png" in message and "truncated" in message
    assert tiny_net.built == 0
    assert not (tmp_path / "out").exists()


def test_an_image_the_model_refuses_fails_only_the_tasks_that_use_it(data, tmp_path, tiny_net):
    own = tiny_net(name="plain").get_preprocess_function()
    refused = np.asarray(Image.open(data / "images" / "b1.png").convert("RGB")).tobytes()

    def refuse_b1(image):  # like face alignment that finds no face
        if np.asarray(image).tobytes() == refused:
            raise DataError("no face found")
        return own(image)

    m = run([tiny_net(name="tiny", preprocess_function=refuse_b1)], tasks(data), tmp_path / "out")
    assert [(f.model, f.task, f.stage) for f in m.failures] == [("tiny", "B", "task")]
    assert "b1.png" in m.failures[0].error and "no face found" in m.failures[0].error
    assert set(m.tasks_performance_dfs) == {"A"}
    assert np.isfinite(m.tasks_performance_dfs["A"]["AUC"]).all()


# ---------------------------------------------------------------- item 12: SIGTERM, file names
def test_sigterm_exports_an_interrupted_run_like_ctrl_c(data, tmp_path, tiny_net):
    def guard(signum, frame):
        raise RuntimeError("SIGTERM reached the test's own handler: the run did not handle it")

    previous = signal.signal(signal.SIGTERM, guard)
    try:
        first, second = tiny_net(name="first"), tiny_net(name="second", seed=1)
        second._forward = lambda tensor: os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(Terminated):
            run([first, second], tasks(data), tmp_path / "out")
        assert signal.getsignal(signal.SIGTERM) is guard  # put back after the run
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert document(tmp_path / "out")["status"] == "interrupted"
    assert {m["model"] for m in document(tmp_path / "out")["metrics"]} == {"first"}


def test_names_that_become_the_same_file_name_are_refused(data, tiny_net):
    a, b = tasks(data)
    b.name = "a"  # performance/A.csv and performance/a.csv are one file on macOS and Windows
    with pytest.raises(ConfigError, match=r"'A' and 'a' both become the file name"):
        manager([tiny_net(name="tiny")], [a, b])
    a.name, b.name = "A B", "A_B"
    with pytest.raises(ConfigError, match=r"'A B' and 'A_B' both become the file name 'A_B'"):
        manager([tiny_net(name="tiny")], [a, b])
    with pytest.raises(ConfigError, match=r"model names 'x/y' and 'x_y'"):
        manager([tiny_net(name="x/y"), tiny_net(name="x_y")], [])
