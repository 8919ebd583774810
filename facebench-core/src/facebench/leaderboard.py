"""``facebench leaderboard``: rank the models of several run folders, per benchmark or dataset metric.

Runs are grouped by the benchmark or dataset they ran (``results.json``'s ``experiment``; runs of
neither form the group ``tasks``). For every task, condition and headline metric of a group, each
model of each run gets two rows: its **best layer** (chosen on the same data it is scored on, so it
flatters models with many layers) and its **chosen layer** (fixed in advance: the model's last
extracted layer, or the one given with ``--layer MODEL=LAYER``). Rows are ranked within each metric
and layer choice, best first, for metrics with a direction (accuracy, AUC, TAR, correlation, RSA:
higher; EER: lower); other metrics are listed unranked. Intervals are those the run recorded
(bootstrap CI, noise ceiling, or ± the fold standard deviation). A task whose settings (options,
metric, number of pairs, pairs-file and benchmark checksums) differ between runs is flagged on
every row of the runs that differ from the most common settings. Nothing is recomputed.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facebench.errors import ConfigError
from facebench.report import REPORT_FILE, Run, _interval, load_run
from facebench.results import write_csv_atomic, write_text_atomic

HIGHER_IS_BETTER = ("Accuracy", "AUC", "TAR at FAR", "Correlation Score", "RSA Score", "Macro F1")
LOWER_IS_BETTER = ("EER",)
CSV_COLUMNS = (
    "group",
    "task",
    "condition",
    "metric",
    "layer_choice",
    "rank",
    "model",
    "layer",
    "value",
    "interval_low",
    "interval_high",
    "interval_kind",
    "run",
    "report",
    "flag",
)


@dataclass
class Row:
    """One model's value on one metric, at its best or its chosen layer."""

    group: str
    task: str
    condition: str | None
    metric: str
    layer_choice: str
    model: str
    layer: str
    value: float
    interval: tuple[float, float, str] | None
    run: Path
    report: Path | None
    flag: str = ""
    rank: int | None = None


@dataclass
class Leaderboard:
    rows: list[Row]
    flags: list[str] = field(default_factory=list)


def direction(metric: str) -> int:
    """+1 when higher is better, -1 when lower is, 0 when the metric has no direction."""
    if metric.startswith(LOWER_IS_BETTER):
        return -1
    return 1 if any(word in metric for word in HIGHER_IS_BETTER) else 0


def build_leaderboard(paths: Sequence[Path], chosen: Mapping[str, str] | None = None) -> Leaderboard:
    """The ranked rows of the runs in ``paths`` (see the module docstring)."""
    chosen = dict(chosen or {})
    runs = [load_run(path) for path in paths]
    flagged, flags = _settings_flags(runs)
    rows: list[Row] = []
    for run in runs:
        group = _group(run)
        report = run.path / REPORT_FILE
        last = {m.get("name"): (m.get("layers") or [None])[-1] for m in run.document.get("models") or []}
        for task in run.tasks:
            flag = flagged.get((group, task, str(run.path)), "")
            records = [r for r in run.records if r["task"] == task]
            for metric in run.headline(task):
                sign = direction(metric) or 1
                keys = {(r["model"], r.get("condition")) for r in records}
                for model, condition in sorted(keys, key=lambda k: (str(k[0]), str(k[1]))):
                    scored = [
                        r
                        for r in records
                        if (r["model"], r.get("condition")) == (model, condition)
                        and _finite(r["values"].get(metric))
                    ]
                    if not scored:
                        continue
                    best = max(scored, key=lambda r: sign * float(r["values"][metric]))
                    fixed_layer = chosen.get(str(model), last.get(model))
                    fixed = next((r for r in scored if r["layer"] == fixed_layer), None)
                    for choice, record in (("best layer", best), ("chosen layer", fixed)):
                        if record is None:
                            continue
                        rows.append(
                            Row(
                                group,
                                task,
                                condition,
                                metric,
                                choice,
                                str(model),
                                str(record["layer"]),
                                float(record["values"][metric]),
                                _interval(record["values"], metric),
                                run.path,
                                report if report.is_file() else None,
                                flag,
                            )
                        )
    _rank(rows)
    return Leaderboard(rows, flags)


def write_html(board: Leaderboard, output: str | Path) -> Path:
    """One self-contained page: a ranked table per metric, every value escaped."""
    output = Path(output)
    sections = []
    for key, rows in _by_metric(board.rows).items():
        group, task, condition, metric, choice = key
        title = f"{group} · {task}" + (f" - {condition}" if condition else "") + f": {metric} ({choice})"
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{cell}</td>"
                for cell in (
                    "—" if row.rank is None else row.rank,
                    _e(row.model),
                    _e(row.layer),
                    f"{row.value:.4f}",
                    _e(_interval_text(row.interval)),
                    _link(row, output),
                    _e(row.flag),
                )
            )
            + "</tr>\n"
            for row in rows
        )
        sections.append(
            f"<h2>{_e(title)}</h2>\n<table><thead><tr><th>Rank</th><th>Model</th><th>Layer</th><th>Value</th>"
            f"<th>Interval</th><th>Run</th><th>Flag</th></tr></thead>\n<tbody>\n{body}</tbody></table>"
        )
    notes = "".join(f'<p class="flag">Flagged: {_e(flag)}</p>\n' for flag in board.flags)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>facebench leaderboard</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.flag{{color:#a40}}</style></head>
<body><h1>facebench leaderboard</h1>
<p>Best layer: chosen on the same data it is scored on (flatters models with many layers); chosen layer:
fixed in advance. Intervals are those each run recorded. Rows of runs whose settings differ from the
others' for the same task are flagged.</p>
{notes}{"".join(sections) or "<p>No metric values in these runs.</p>"}
</body></html>
"""
    return write_text_atomic(output, page)


def write_csv(board: Leaderboard, output: str | Path) -> Path:
    """The rows as a CSV table (``CSV_COLUMNS``)."""
    import pandas as pd

    records = [
        {
            "group": r.group,
            "task": r.task,
            "condition": r.condition,
            "metric": r.metric,
            "layer_choice": r.layer_choice,
            "rank": r.rank,
            "model": r.model,
            "layer": r.layer,
            "value": r.value,
            "interval_low": r.interval[0] if r.interval else None,
            "interval_high": r.interval[1] if r.interval else None,
            "interval_kind": r.interval[2] if r.interval else None,
            "run": str(r.run),
            "report": str(r.report) if r.report else None,
            "flag": r.flag,
        }
        for rows in _by_metric(board.rows).values()
        for r in rows
    ]
    return write_csv_atomic(pd.DataFrame(records, columns=list(CSV_COLUMNS)), output)


def parse_layer_choices(texts: Sequence[str]) -> dict[str, str]:
    """``MODEL=LAYER`` pairs of ``--layer``."""
    chosen = {}
    for text in texts:
        model, sep, layer = text.partition("=")
        if not sep or not model or not layer:
            raise ConfigError(f"--layer {text!r}: expected MODEL=LAYER, e.g. vgg16=classifier.4")
        chosen[model] = layer
    return chosen


def _group(run: Run) -> str:
    experiment = run.document.get("experiment") or {}
    for kind in ("benchmark", "dataset"):
        record = experiment.get(kind)
        if isinstance(record, dict) and record.get("name"):
            return f"{kind} {record['name']}"
    return "tasks"


def _signature(run: Run, task: str) -> str:
    """What must match for two runs' values on ``task`` to be compared."""
    description = run.task_description(task)
    options = {k: v for k, v in (description.get("options") or {}).items() if not str(k).endswith("_path")}
    options.pop("name", None)
    experiment = run.document.get("experiment") or {}
    checks = {
        kind: {k: v for k, v in (experiment.get(kind) or {}).items() if k.endswith("sha256")}
        for kind in ("benchmark", "dataset")
    }
    return json.dumps(
        {
            "class": description.get("class"),
            "options": options,
            "metric": description.get("metric"),
            "pairs": description.get("pairs"),
            "images": description.get("images"),
            "checksums": checks,
        },
        sort_keys=True,
        default=str,
    )


def _settings_flags(runs: Sequence[Run]) -> tuple[dict[tuple[str, str, str], str], list[str]]:
    signatures: dict[tuple[str, str], dict[str, str]] = {}
    for run in runs:
        for task in run.tasks:
            signatures.setdefault((_group(run), task), {})[str(run.path)] = _signature(run, task)
    flagged, flags = {}, []
    for (group, task), by_run in signatures.items():
        counts = Counter(by_run.values())
        if len(counts) < 2:
            continue
        common = counts.most_common(1)[0][0]
        differing = sorted(path for path, signature in by_run.items() if signature != common)
        for path in differing:
            flagged[(group, task, path)] = "settings differ from the other runs of this task"
        flags.append(
            f"{group}, task {task!r}: {', '.join(differing)} used different settings from the other runs"
        )
    return flagged, flags


def _rank(rows: list[Row]) -> None:
    for key, group in _by_metric(rows).items():
        sign = direction(key[3])
        if not sign:
            continue
        previous, rank = None, 0
        for position, row in enumerate(group, start=1):
            if row.value != previous:
                rank, previous = position, row.value
            row.rank = rank


def _by_metric(rows: Sequence[Row]) -> dict[tuple[str, str, str | None, str, str], list[Row]]:
    grouped: dict[tuple[str, str, str | None, str, str], list[Row]] = {}
    for row in rows:
        grouped.setdefault((row.group, row.task, row.condition, row.metric, row.layer_choice), []).append(row)
    for key, group in grouped.items():
        sign = direction(key[3]) or 1
        group.sort(key=lambda r: (-sign * r.value, r.model, str(r.run)))
    return grouped


def _interval_text(interval: tuple[float, float, str] | None) -> str:
    return "—" if interval is None else f"{interval[0]:.4f} to {interval[1]:.4f} ({interval[2]})"


def _link(row: Row, output: Path) -> str:
    label = _e(row.run.name or str(row.run))
    if row.report is None:
        return f"{label} (no report)"
    href = Path(os.path.relpath(row.report.resolve(), output.resolve().parent)).as_posix()
    return f'<a href="{html.escape(href, quote=True)}">{label}</a>'


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
