"""A report that stays light and reads well: small previews inline with the full-size plots
linked beside the page, a comparison that opens with what differs and gets a default file,
no content-visibility (whole in screenshots and print), and alt text that says what a plot is."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from facebench.cli import main
from facebench.report import write_report
from facebench.report_previews import INLINE_LIMIT, OVERVIEW_BOX, SMALL_BOX, data_uri

COPIES = 30  # extra scatter plots: a run with many model-layers


def many_plot_run(folder: Path, tmp_path: Path) -> Path:
    """A copy of ``folder`` with COPIES more scatter plots (copies of a real one), listed."""
    run = Path(shutil.copytree(folder, tmp_path / "many"))
    document = json.loads((run / "results.json").read_text())
    source = run / "plots" / "Similarity" / "Similarity_scatter_net-a_conv"
    for i in range(COPIES):
        for suffix in (".png", ".svg"):
            target = source.with_name(f"Similarity_scatter_net-c{i}_conv{suffix}")
            shutil.copyfile(source.with_suffix(suffix), target)
            document["files"].append(target.relative_to(run).as_posix())
    (run / "results.json").write_text(json.dumps(document))
    return run


def figures(html: str) -> list[tuple[str, list[str]]]:
    """Each figure's image source and the links in it."""
    found = re.findall(r"<figure>(.*?)</figure>", html, flags=re.S)
    return [(re.search(r'<img src="([^"]*)"', f).group(1), re.findall(r'href="([^"]*)"', f)) for f in found]


def decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/webp;base64,"), uri[:40]
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_many_plots_give_small_previews_linked_to_the_full_size_files(runs, tmp_path):
    run = many_plot_run(runs[0], tmp_path)
    page = write_report(run)
    html = page.read_text(encoding="utf-8")
    listed = {f for f in json.loads((run / "results.json").read_text())["files"] if f.startswith("plots/")}
    shown = figures(html)
    assert len(shown) == len(listed) // 2  # one figure per plot (PNG and SVG of one stem)

    linked, webp = set(), 0
    for source, links in shown:
        for link in links:
            target = (page.parent / urllib.parse.unquote(link)).resolve()
            assert not link.startswith(("/", "file:", "http")) and target.is_relative_to(run.resolve())
            assert target.is_file()
            linked.add(target.relative_to(run.resolve()).as_posix())
        smallest = min(
            (run / urllib.parse.unquote(link) for link in links[1:]), key=lambda p: p.stat().st_size
        )
        if not source.startswith("data:image/webp"):  # a small plot is inlined as it is
            assert smallest.stat().st_size <= INLINE_LIMIT and source == data_uri(smallest)
            continue
        webp += 1
        preview = decode(source)
        box = SMALL_BOX if "scatter" in links[0] else OVERVIEW_BOX
        png = Image.open(next(run / urllib.parse.unquote(link) for link in links if link.endswith(".png")))
        scale = min(1.0, box[0] / png.width, box[1] / png.height)
        assert preview.size == pytest.approx((png.width * scale, png.height * scale), abs=1)
        # the same picture: close to Pillow's own downscaling of the full-size PNG
        full = png.convert("RGB").resize(preview.size, Image.Resampling.LANCZOS)
        difference = np.abs(np.asarray(full, float) - np.asarray(preview.convert("RGB"), float))
        assert difference.mean() < 4.0
    assert webp >= COPIES
    assert linked == listed  # nothing lost: every plot file is one click away

    inlined_as_before = sum(
        len(
            base64.b64encode(
                min((run / f, run / f.replace(".png", ".svg")), key=lambda p: p.stat().st_size).read_bytes()
            )
        )
        for f in listed
        if f.endswith(".png")
    )
    assert page.stat().st_size < inlined_as_before / 3


def test_a_comparison_without_output_gets_a_default_file_and_says_where(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["report", str(runs[0]), str(runs[1])])
    assert result.exit_code == 0, result.output
    default = tmp_path / "comparison_seed-0_vs_seed-1.html"
    assert default.is_file() and "facebench comparison: seed-0 vs seed-1" in default.read_text()
    assert f"the comparison is {default.name} in the current folder" in result.output
    assert default.resolve().as_uri() in result.output


def test_a_comparison_opens_with_what_differs(runs, tmp_path):
    html = write_report(list(runs), tmp_path / "c.html").read_text(encoding="utf-8")
    start = html.index('<h2 id="differs">What differs</h2>')
    assert start < html.index('<h2 id="human">') and '<a href="#differs">' in html
    summary = html[start : html.index("</section>", start)]

    settings = summary[: summary.index("Headline metrics against")]
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th><td><code>([^<]*)</code>', settings))
    assert rows["model net-a · weights_fingerprint"] == "random:seed=0"
    assert "model net-a · seed" in rows and "started_at" not in summary and "finished_at" not in summary
    for key in rows:  # only what differs
        assert key.startswith(("settings", "model ")), key

    headline = summary[summary.index("Headline metrics against") :]
    checked = 0
    for task, metric in [
        ("LFW", "AUC"),
        ("Thatcher Effect", "Relative Difference"),
        ("Similarity", "Correlation Score"),
    ]:
        a, b = (
            pd.read_csv(run / "performance" / f"{task.replace(' ', '_')}.csv").set_index(
                ["Model Name", "Layer Name"]
            )
            for run in runs
        )
        delta = b[metric] - a[metric]
        apart = pd.Series(False, index=a.index)
        if f"{metric} CI Low" in a:  # LFW's AUC has no interval
            low, high = f"{metric} CI Low", f"{metric} CI High"
            apart = (a[low] > b[high]) | (b[low] > a[high])
        row = re.search(rf"<th scope=\"row\">{task}</th><td>{metric}</td>(.*?)</tr>", headline).group(1)
        values = re.findall(r'data-v="([^"]*)"', row)
        assert re.search(rf">{int((delta != 0).sum())} of {len(delta)}<", row)
        assert int(values[1]) == int(apart.sum())
        assert float(values[2]) == pytest.approx(delta.mean(), rel=1e-12, abs=1e-15)
        assert float(values[3]) == pytest.approx(delta[delta.abs().idxmax()], rel=1e-12)
        checked += 1
    assert checked == 3


def test_the_page_is_laid_out_whole_and_prints_whole(runs):
    css = (runs[0] / "report.html").read_text(encoding="utf-8")
    style = css[css.index("<style>") : css.index("</style>")]
    assert not re.search(r"content-visibility\s*:", style)  # off-screen sections: blank in screenshots
    printed = style[style.index("@media print") :]
    assert ".scroll { overflow: visible; }" in printed  # wide tables are not cut on paper


def test_alt_text_says_what_each_plot_is(runs, tmp_path):
    run = Path(shutil.copytree(runs[0], tmp_path / "run"))
    (run / "plots" / "analyses" / "cka").mkdir(parents=True)
    shutil.copyfile(
        run / "plots" / "LFW" / "LFW_AUC.png", run / "plots" / "analyses" / "cka" / "cka_linear.png"
    )
    document = json.loads((run / "results.json").read_text())
    document["files"].append("plots/analyses/cka/cka_linear.png")
    (run / "results.json").write_text(json.dumps(document))
    html = write_report(run).read_text(encoding="utf-8")
    alts = dict(
        re.findall(
            r'<img src="[^"]*" alt="([^"]*)"[^>]*></a><figcaption>[^<]*— full size: <a href="([^"]*)"', html
        )
    )
    by_file = {v: k for k, v in alts.items()}
    assert by_file["plots/analyses/cka/cka_linear.png"].startswith(
        "cka: heatmap of linear CKA between every pair"
    )
    assert "bar" not in by_file["plots/analyses/cka/cka_linear.png"]
    assert by_file["plots/LFW/LFW_AUC.png"] == "LFW: AUC, one bar per model and layer"
    assert "one point per pair" in by_file["plots/Similarity/Similarity_scatter_net-a_conv.png"]
    assert "by layer depth" in by_file["plots/LFW/LFW_AUC_by_layer.png"]
