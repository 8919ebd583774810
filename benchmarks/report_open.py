"""How fast report.html opens in headless Chromium for a large run, and its size.

Goal: a run of 20 models x 10 layers x 7 tasks gives a page of at most 5 MB (light previews of
the plots inline, the full-size files linked beside it) that opens in under a second. Each figure
is printed beside the old behaviour's (every plot inlined in full), built from the same folder.

Without arguments, writes a synthetic results folder of that size (every table, the plots the
manager draws: bars and layer curves per headline metric, and one model-vs-human scatter per
model-layer for the correlation task, 200 of them), builds its report and opens it REPEATS times.
With a results folder, measures (and with --screenshot saves a picture of) that folder's report:

    python benchmarks/report_open.py
    python benchmarks/report_open.py facebench-demo/results --screenshot docs/images/report.png

Needs ``playwright`` and Chromium (/usr/bin/chromium or FACEBENCH_CHROMIUM).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from facebench import plots, report_previews
from facebench.report import write_report
from facebench.results import safe_filename, unified_summary, write_json_atomic

REPEATS = 5
MODELS, LAYERS = 20, 10
CHROMIUM = os.environ.get("FACEBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HUMANS = Path(__file__).parents[1] / "tests" / "fixtures" / "manager" / "human_percentiles.csv"
# name, headline metrics, every metric, conditions
TASKS = [
    (
        "LFW",
        ["Cross-Validated Accuracy", "AUC"],
        ["Accuracy", "AUC", "Cross-Validated Accuracy", "EER"],
        None,
    ),
    ("Inversion", ["Cross-Validated Accuracy", "AUC"], ["Accuracy", "AUC", "Cross-Validated Accuracy"], None),
    (
        "Other Race",
        ["Cross-Validated Accuracy", "AUC"],
        ["Accuracy", "AUC", "Cross-Validated Accuracy"],
        None,
    ),
    ("Similarity", ["Correlation Score"], ["Correlation Score"], None),
    ("Thatcher Effect", ["Relative Difference"], ["Relative Difference"], None),
    ("Conditions", ["Mean Value"], ["Mean Value"], ["same", "different", "inverted"]),
    ("RSA", ["RSA Score"], ["RSA Score"], None),
]


def synthetic_run(folder: Path) -> Path:
    """A results folder shaped like a real run of MODELS x LAYERS on the seven TASKS."""
    rng = np.random.default_rng(0)
    models = [f"model-{m:02d}" for m in range(MODELS)]
    layers = [f"layer{layer}" for layer in range(LAYERS)]
    performances, files, tasks = {}, [], []
    for name, headline, metrics, conditions in TASKS:
        rows = []
        for model in models:
            for layer in layers:
                for condition in conditions or [None]:
                    row = {"Model Name": model, "Layer Name": layer}
                    if condition:
                        row["Condition"] = condition
                    for metric in metrics:
                        row[metric] = float(rng.uniform(0.5, 1.0))
                        row[f"{metric} CI Low"] = row[metric] - 0.03
                        row[f"{metric} CI High"] = row[metric] + 0.03
                    if name == "RSA":
                        row["Noise Ceiling Lower"], row["Noise Ceiling Upper"] = 0.7, 0.8
                    rows.append(row)
        frame = pd.DataFrame(rows)
        performances[name] = frame
        (folder / "performance").mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / "performance" / f"{safe_filename(name)}.csv", index=False)
        plot_folder = folder / "plots" / safe_filename(name)
        written: list[Path] = []
        one = frame if not conditions else frame[frame["Condition"] == conditions[0]]
        for metric in headline:
            written += plots.bar_plot(
                one, metric, plot_folder, f"{name}: {metric}", filename=safe_filename(f"{name}_{metric}")
            )
            written += plots.layer_curve_plot(
                one,
                metric,
                plot_folder,
                f"{name}: {metric} by layer",
                filename=safe_filename(f"{name}_{metric}_by_layer"),
            )
        if name == "Similarity":
            first = plots.scatter_plot(
                rng.random(300), rng.random(300), plot_folder, "Similarity: scatter", "h", "m"
            )
            for model in models:
                for layer in layers:
                    for path in first:
                        copy = path.with_name(f"Similarity_scatter_{model}_{layer}{path.suffix}")
                        shutil.copyfile(path, copy)
                        written.append(copy)
            for path in first:
                path.unlink()
        files += [p.relative_to(folder).as_posix() for p in written]
        tasks.append({"name": name, "class": "synthetic", "headline_metrics": headline, "pairs": 6000})
    unified_summary(performances).to_csv(folder / "models_unified_results.csv", index=False)
    metrics = [
        {
            "task": name,
            "model": row["Model Name"],
            "layer": row["Layer Name"],
            "condition": row.get("Condition"),
            "values": {k: v for k, v in row.items() if k not in ("Model Name", "Layer Name", "Condition")},
        }
        for name, frame in performances.items()
        for row in frame.to_dict("records")
    ]
    document = {
        "schema_version": 1,
        "status": "completed",
        "command_line": "benchmarks/report_open.py",
        "settings": {"human_percentiles": str(HUMANS)},
        "models": [{"name": m, "weights_fingerprint": f"sha256:{m}"} for m in models],
        "tasks": tasks,
        "metrics": metrics,
        "failures": [],
        "files": sorted(files),
    }
    write_json_atomic(folder / "results.json", document)
    return folder


def open_times(report: Path, screenshot: Path | None) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    loads, paints = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        for _ in range(REPEATS):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report.resolve().as_uri(), wait_until="load")
            timing = json.loads(
                page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
            )
            paint = page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
            )
            loads.append(timing["loadEventEnd"])
            paints.append(paint or float("nan"))
            nodes = page.evaluate("document.getElementsByTagName('*').length")
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
                screenshot = None
            page.close()
        browser.close()
    return {"load_ms": statistics.median(loads), "fcp_ms": statistics.median(paints), "nodes": nodes}


def inlined_in_full(folder: Path) -> Path:
    """The report as it was before previews: every plot's smaller file inlined as it is."""
    original = report_previews.preview_uri
    report_previews.preview_uri = lambda files, box: report_previews.data_uri(
        min(files, key=lambda p: p.stat().st_size)
    )
    try:
        return write_report(folder, folder / "report-inlined-in-full.html")
    finally:
        report_previews.preview_uri = original


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results_dir", nargs="?", type=Path)
    parser.add_argument("--screenshot", type=Path)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = options.results_dir
        if folder is None:
            start = time.perf_counter()
            folder = synthetic_run(Path(scratch) / "results")
            print(
                f"synthetic run of {MODELS} models x {LAYERS} layers x {len(TASKS)} tasks: "
                f"{time.perf_counter() - start:.1f} s to draw"
            )
        start = time.perf_counter()
        report = write_report(folder)
        built = time.perf_counter() - start
        figures = open_times(report, options.screenshot)
        start = time.perf_counter()
        inlined = inlined_in_full(folder)
        built_before = time.perf_counter() - start
        try:
            before = open_times(inlined, None)
            size_before = inlined.stat().st_size / 1e6
        finally:
            inlined.unlink()
        print(f"{'':34}{'previews (now)':>16}{'inlined (before)':>18}")
        rows = [
            ("page size (MB)", report.stat().st_size / 1e6, size_before, ".1f"),
            ("built in (s)", built, built_before, ".2f"),
            ("elements", figures["nodes"], before["nodes"], "d"),
            (f"load event, median of {REPEATS} (ms)", figures["load_ms"], before["load_ms"], ".0f"),
            ("first contentful paint (ms)", figures["fcp_ms"], before["fcp_ms"], ".0f"),
        ]
        for name, now, then, fmt in rows:
            print(f"{name:34}{now:>16{fmt}}{then:>18{fmt}}")
        if options.screenshot:
            print(f"screenshot: {options.screenshot}")
    sys.exit(0)


if __name__ == "__main__":
    main()
