"""One self-contained HTML page per results folder, or several runs side by side.

:func:`write_report` reads what a run wrote (``results.json``: metrics, failures, provenance;
the plots listed in it) and writes ``report.html``: a sortable summary table per task (models x
layers, the headline metrics with their intervals, rounded, full precision on hover), a light
preview of each plot inlined (:mod:`facebench.report_previews`) and linked to its full-size files
beside the page, failures with their messages, the provenance, and the human-likeness section of
:mod:`facebench.human_likeness`. Nothing is recomputed from distances. The page makes
no network request (its Content-Security-Policy allows none); it works from a USB stick.

With several results folders, the page opens with what differs (settings and headline metrics
in brief); tasks and models are aligned across runs: each metric shows every
run's value and its difference to the first run, highlighted when it differs (strongly when
both confidence intervals exist and do not overlap); provenance rows that differ are highlighted
too.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import string
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from facebench import report_previews
from facebench.errors import DataError
from facebench.human_likeness import CEILING_LOWER, CEILING_UPPER, RSA_SCORE, HumanLikeness, assess
from facebench.report_previews import OVERVIEW_BOX, SMALL_BOX
from facebench.results import RESULTS_JSON_FILE, safe_filename

REPORT_FILE = "report.html"
PLOT_EXTENSIONS = (".svg", ".png")
INTERVAL_SUFFIXES = (" CI Low", " CI High", " Std", " - Std", " + Std")
DIFF_TOLERANCE = 1e-12
PREVIEW_MARK = "\x00preview\x00"  # where a figure's preview goes, filled in once all are drawn
WHEN_KEYS = ("started_at", "finished_at", "duration_seconds")  # differ between any two runs
STAGING_NAME = re.compile(r"^\.(?P<name>.+)\.facebench-[0-9a-f]+$")


@dataclass
class Run:
    """One results folder and its results.json."""

    path: Path
    document: dict[str, Any]
    label: str = ""
    human: HumanLikeness | None = None
    human_source: str | None = None
    human_notes: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        names = [str(t.get("name")) for t in self.document.get("tasks") or []]
        names += [str(r["task"]) for r in self.records]
        return list(dict.fromkeys(names))

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self.document.get("metrics") or [])

    def task_description(self, task: str) -> dict[str, Any]:
        return next((t for t in self.document.get("tasks") or [] if t.get("name") == task), {})

    def headline(self, task: str) -> list[str]:
        """The task's headline metrics: recorded in results.json, else every metric that is not
        an interval bound."""
        recorded = self.task_description(task).get("headline_metrics")
        metrics = list(dict.fromkeys(m for r in self.records if r["task"] == task for m in r["values"]))
        if recorded:
            return [m for m in recorded if m in metrics] or metrics[:1]
        return [m for m in metrics if not _is_interval(m)]

    @property
    def analyses(self) -> list[str]:
        """Names of the analyses whose tables or plots the run wrote."""
        names = []
        for name in self.document.get("files") or []:
            parts = name.split("/")
            if parts[:2] == ["plots", "analyses"] and len(parts) == 4:
                names.append(parts[2])
            elif parts[0] == "analyses" and len(parts) == 2 and name.endswith(".csv"):
                names.append(parts[1].removesuffix(".csv"))
        return list(dict.fromkeys(names))

    def plots(self, task: str) -> list[list[Path]]:
        """The task's plots, each as its files (SVG and PNG of one stem)."""
        return self.plot_files(f"plots/{safe_filename(task)}/")

    def plot_files(self, folder: str) -> list[list[Path]]:
        """The plots in ``folder`` (relative, ending in /), each as the files of one stem. Only
        files inside the run folder are taken (a hand-edited ``../`` or absolute path is not)."""
        listed = [f for f in self.document.get("files") or [] if f.startswith(folder)]
        candidates = [self.path / f for f in listed] or sorted((self.path / folder).glob("*"))
        root = self.path.resolve()
        by_stem: dict[str, list[Path]] = {}
        for path in candidates:
            inside = path.resolve().is_relative_to(root)
            if inside and path.suffix in PLOT_EXTENSIONS and path.is_file():
                by_stem.setdefault(path.stem, []).append(path)
        return [sorted(set(paths), key=lambda p: p.suffix) for paths in by_stem.values()]


def load_run(path: str | Path) -> Run:
    """Read a results folder; :class:`DataError` when it has no readable results.json."""
    folder = Path(path)
    target = folder / RESULTS_JSON_FILE
    if not target.is_file():
        raise DataError(
            f"{str(folder)!r} is not a facebench results folder: it has no {RESULTS_JSON_FILE} "
            f"(pass the folder a run wrote, e.g. facebench-demo/results)"
        )
    try:
        document = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {str(target)!r}: {exc}") from exc
    if not isinstance(document, dict) or "metrics" not in document:
        raise DataError(f"{str(target)!r} is not a facebench results.json (no 'metrics')")
    problem = _shape_problem(document)
    if problem:
        raise DataError(
            f"{str(target)!r} is not shaped as facebench writes it: {problem}; restore the file the "
            f"run wrote (or run again)"
        )
    return Run(folder, document)


_OBJECTS = ("settings", "environment", "plugins_used", "code", "code_identity")
_LISTS_OF_OBJECTS = ("metrics", "tasks", "models", "failures", "analyses")
_TEXT_IN = {"metrics": ("task", "model", "layer"), "tasks": ("name",), "failures": ("error", "traceback")}


def _shape_problem(document: Mapping[str, Any]) -> str | None:
    """What in ``document`` has a type results.json never holds (the first found), or None."""

    def kind(value: Any) -> str:
        return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)

    for key in _OBJECTS:
        if document.get(key) is not None and not isinstance(document[key], dict):
            return f"{key!r} must be an object, not {kind(document[key])}"
    if document.get("experiment") is not None and not isinstance(document["experiment"], dict):
        return f"'experiment' must be an object, not {kind(document['experiment'])}"
    files = document.get("files")
    if files is not None and not (isinstance(files, list) and all(map(_is_text, files))):
        return "'files' must be a list of file names"
    for key in _LISTS_OF_OBJECTS:
        items = document.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            return f"{key!r} must be a list, not {kind(items)}"
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                return f"{key}[{i}] must be an object, not {kind(item)}"
            for field_ in _TEXT_IN.get(key, ()):
                if item.get(field_) is not None and not isinstance(item[field_], str):
                    return f"{key}[{i}].{field_} must be a string, not {kind(item[field_])}"
    for i, record in enumerate(document["metrics"] or []):
        if not isinstance(record.get("task"), str):
            return f"metrics[{i}].task must be a string"
        values = record.get("values")
        if not isinstance(values, dict):
            return f"metrics[{i}].values must be an object of metric values, not {kind(values)}"
        for name, value in values.items():
            if value is not None and not isinstance(value, int | float):
                return f"metrics[{i}].values[{name!r}] must be a number or null, not {kind(value)}"
        if record.get("condition") is not None and not isinstance(record["condition"], str):
            return f"metrics[{i}].condition must be a string or null"
    for i, task in enumerate(document.get("tasks") or []):
        headline = task.get("headline_metrics")
        if headline is not None and not (isinstance(headline, list) and all(map(_is_text, headline))):
            return f"tasks[{i}].headline_metrics must be a list of metric names"
        if task.get("human_columns") is not None and not isinstance(task["human_columns"], dict):
            return f"tasks[{i}].human_columns must be an object"
    return None


def write_report(
    results_dirs: str | Path | Sequence[str | Path],
    output: str | Path | None = None,
    human_percentiles: str | Path | None = None,
) -> Path:
    """Write the report of one results folder (default ``<folder>/report.html``) or the
    comparison of several (default :func:`comparison_file` in the current folder). Returns the
    written path."""
    from facebench.results import write_text_atomic

    dirs = [results_dirs] if isinstance(results_dirs, str | Path) else list(results_dirs)
    if not dirs:
        raise DataError("no results folder given")
    runs = [load_run(d) for d in dirs]
    if output is None:
        output = Path(dirs[0]) / REPORT_FILE if len(runs) == 1 else Path(comparison_file(runs))
    return write_text_atomic(output, render(runs, Path(output), human_percentiles))


def comparison_file(runs: Sequence[Run]) -> str:
    """The default file name of the comparison of ``runs``: ``comparison_<A>_vs_<B>.html``
    (``comparison_of_<N>_runs.html`` when that would be too long a name)."""
    _label(runs)
    name = safe_filename("comparison_" + "_vs_".join(run.label for run in runs))
    return (name if len(name) <= 120 else f"comparison_of_{len(runs)}_runs") + ".html"


def render(runs: Sequence[Run], output: Path, human_percentiles: str | Path | None = None) -> str:
    """The page for ``runs`` (one: a run's report; several: a comparison), to be saved as
    ``output`` (links to the runs' files are relative to it)."""
    _label(runs)
    for run in runs:
        _human_likeness(run, human_percentiles)
    from facebench.plugins import core_version

    page = _Page(runs, output.parent.resolve())
    template = string.Template(_asset("report.html"))
    script = _asset("report.js")
    return template.substitute(
        version=html.escape(core_version()),
        title=html.escape(page.title()),
        style=_asset("report.css"),
        script=script,
        script_hash=script_hash(script),
        header=page.header(),
        main=page.with_previews(page.main()),
    )


# ---------------------------------------------------------------------------- human data
def _human_likeness(run: Run, override: str | Path | None) -> None:
    """Assess ``run`` against the human table it recorded (or ``override``); say what is wrong
    with the table instead of failing."""
    from facebench.plots import HumanPercentiles

    settings = run.document.get("settings") or {}
    source = override or settings.get("human_percentiles")
    human = None
    if source and not Path(source).is_file():
        origin = "given" if override else "recorded by the run"
        run.human_notes.append(
            f"the human percentiles file {str(source)!r} {origin} was not found; "
            "pass it with facebench report --human-percentiles FILE"
        )
    elif source:
        path = Path(source)
        try:
            human = HumanPercentiles.from_csv(path)
        except DataError as exc:
            if override:
                raise  # the file the user gave is malformed: say so, never ignore it
            run.human_notes.append(f"the human percentiles file could not be used: {exc}")
        else:
            run.human_source = str(path)
            expected = settings.get("human_percentiles_sha256")
            if expected and not override and _sha256(path) != expected:
                run.human_notes.append(
                    f"{path} changed since the run (its SHA-256 differs from the one in results.json)"
                )
    headline = {task: run.headline(task) for task in run.tasks}
    human_columns = {task: run.task_description(task).get("human_columns") or {} for task in run.tasks}
    run.human = assess(run.records, human, headline, human_columns)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- the page
class _Page:
    def __init__(self, runs: Sequence[Run], base: Path) -> None:
        self.runs = list(runs)
        self.base = base
        self.compare = len(self.runs) > 1
        self.tasks = list(dict.fromkeys(t for run in self.runs for t in run.tasks))
        self.anchors = {task: f"task-{i + 1}" for i, task in enumerate(self.tasks)}
        self.previews: list[tuple[Sequence[Path], tuple[int, int]]] = []  # drawn together, in threads

    def title(self) -> str:
        if self.compare:
            return "facebench comparison: " + " vs ".join(run.label for run in self.runs)
        return f"facebench report: {self.runs[0].label}"

    # ---------------------------------------------------------------- header
    def header(self) -> str:
        parts = [f"<h1>{_e(self.title())}</h1>"]
        for run in self.runs:
            doc = run.document
            failures = doc.get("failures") or []
            status = str(doc.get("status", "unknown"))
            badge = "ok" if status == "completed" and not failures else "bad"
            models = doc.get("models") or []
            items = [
                f"<strong>{_e(run.label)}</strong>" if self.compare else "",
                f'<span class="badge {badge}">{_e(status)}</span>',
                f"<code>{_e(str(run.path.resolve()))}</code>" if run.path.resolve() != self.base else "",
                _e(f"finished {doc.get('finished_at') or '?'}"),
                _e(f"{doc.get('duration_seconds')} s") if doc.get("duration_seconds") is not None else "",
                _e(f"{len(models)} model(s), {len(run.tasks)} task(s)"),
                _e(f"{len(failures)} failure(s)"),
            ]
            parts.append('<p class="meta">' + "".join(f"<span>{i}</span>" for i in items if i) + "</p>")
        links = [("differs", "What differs")] if self.compare else []
        links += [("human", "Human-likeness")]
        links += [(self.anchors[t], t) for t in self.tasks]
        if any(run.analyses for run in self.runs):
            links.append(("analyses", "Analyses"))
        links += [("failures", "Failures"), ("provenance", "Provenance")]
        parts.append(
            '<nav aria-label="Contents"><ul>'
            + "".join(f'<li><a href="#{a}">{_e(text)}</a></li>' for a, text in links)
            + "</ul></nav>"
        )
        return "\n".join(parts)

    # ---------------------------------------------------------------- main
    def main(self) -> str:
        sections = [self.differs_section()] if self.compare else []
        sections += [self.human_section()]
        sections += [self.task_section(task) for task in self.tasks]
        sections += [self.analyses_section(), self.failures_section(), self.provenance_section()]
        return "\n".join(s for s in sections if s)

    def analyses_section(self) -> str:
        if not any(run.analyses for run in self.runs):
            return ""
        out = ['<section aria-labelledby="analyses"><h2 id="analyses">Analyses</h2>']
        for run in self.runs:
            for name in run.analyses:
                label = f"{name} ({run.label})" if self.compare else name
                out.append(f"<h3>{_e(label)}</h3>")
                table = run.path / "analyses" / f"{name}.csv"
                if table.is_file():
                    out.append(f'<p class="meta"><a href="{_e(self.link(table))}">table (CSV)</a></p>')
                figures = [
                    self.figure(files, _analysis_alt_text(name, files[0].stem), OVERVIEW_BOX)
                    for files in run.plot_files(f"plots/analyses/{safe_filename(name)}/")
                ]
                out.append('<div class="figures">' + "".join(figures) + "</div>")
        out.append("</section>")
        return "\n".join(out)

    # ---------------------------------------------------------------- what differs
    def differs_section(self) -> str:
        """The comparison in brief: the settings that differ, and per task and headline metric
        how many model-layers differ from the first run and by how much."""
        out = ['<section aria-labelledby="differs"><h2 id="differs">What differs</h2>']
        flat = [_provenance(run.document) for run in self.runs]
        keys = [k for k in dict.fromkeys(k for f in flat for k in f) if k not in WHEN_KEYS]
        rows = []
        for key in keys:
            values = [f.get(key) for f in flat]
            if len(set(values)) > 1:
                cells = "".join(
                    f"<td><code>{_e(v)}</code></td>" if v is not None else '<td class="absent">—</td>'
                    for v in values
                )
                rows.append(f"<tr>{_th_row(key)}{cells}</tr>")
        if rows:
            head = ["Setting", *[run.label for run in self.runs]]
            caption = f"{len(rows)} setting(s) differ (of {len(keys)}; when each run ran is left out)"
            out.append(_table(caption, head, rows, sortable=False))
        else:
            out.append('<p class="note">Same versions, settings, models and tasks (only when they ran).</p>')
        out.append(self.metric_differences())
        out.append("</section>")
        return "\n".join(out)

    def metric_differences(self) -> str:
        rows = []
        for task in self.tasks:
            keyed = [
                {_row_key(r): r["values"] for r in run.records if r["task"] == task} for run in self.runs
            ]
            for metric in self.runs[0].headline(task) if task in self.runs[0].tasks else []:
                cells = [_th_row(task), _td(metric)]
                for later in keyed[1:]:
                    cells += _difference_cells(keyed[0], later, metric)
                rows.append("<tr>" + "".join(cells) + "</tr>")
        if not rows:
            return ""
        head = ["Task", "Headline metric"]
        for run in self.runs[1:]:
            head += [
                f"{h} · {run.label}" for h in ("Model-layers that differ", "CIs apart", "Mean Δ", "Largest Δ")
            ]
        caption = (
            f"Headline metrics against {self.runs[0].label}: the model-layers that differ, those whose "
            "confidence intervals do not overlap, the mean and the largest difference (Δ = later run minus "
            "first); each value is in the task's section below"
        )
        return _table(caption, head, rows)

    # ---------------------------------------------------------------- tasks
    def task_section(self, task: str) -> str:
        anchor = self.anchors[task]
        out = [f'<section aria-labelledby="{anchor}"><h2 id="{anchor}">{_e(task)}</h2>']
        for run in self.runs:
            description = run.task_description(task)
            if description:
                out.append(self.task_line(run, description))
        out.append(self.compare_table(task) if self.compare else self.summary_table(self.runs[0], task))
        for run in self.runs:
            out.append(self.plots(run, task))
        out.append("</section>")
        return "\n".join(o for o in out if o)

    def task_line(self, run: Run, description: Mapping[str, Any]) -> str:
        plugin = (description.get("plugin") or {}).get("registered_name") or description.get("class", "")
        bits = [
            f"{run.label}:" if self.compare else "",
            f"task <code>{_e(str(plugin))}</code>",
        ]
        if description.get("pairs_file"):
            pairs = f"{description['pairs']} pairs" if description.get("pairs") is not None else "pairs"
            bits.append(f"{pairs} from <code>{_e(str(description['pairs_file']))}</code>")
        if description.get("metric"):
            bits.append(f"distance <code>{_e(str(description['metric']))}</code>")
        options = description.get("options")
        if options:
            bits.append("options <code>" + _e(json.dumps(options, sort_keys=True)) + "</code>")
        table = run.path / "performance" / f"{safe_filename(str(description.get('name', '')))}.csv"
        if table.is_file():
            bits.append(f'<a href="{_e(self.link(table))}">full table (CSV)</a>')
        return '<p class="meta">' + "".join(f"<span>{b}</span>" for b in bits if b) + "</p>"

    def summary_table(self, run: Run, task: str) -> str:
        records = [r for r in run.records if r["task"] == task]
        if not records:
            return '<p class="note">No results for this task (see Failures).</p>'
        metrics = run.headline(task)
        has_condition = any(r.get("condition") for r in records)
        head = ["Model", "Layer", *(["Condition"] if has_condition else []), *metrics]
        rows = []
        for r in records:
            cells = [_th_row(r["model"]), _td(r["layer"])]
            if has_condition:
                cells.append(_td(r.get("condition") or ""))
            cells += [_value_cell(r["values"], m) for m in metrics]
            rows.append("<tr>" + "".join(cells) + "</tr>")
        caption = (
            f"{task}: headline metrics per model and layer ({len(records)} rows); click a header to sort"
        )
        return _table(caption, head, rows)

    def compare_table(self, task: str) -> str:
        keyed: dict[tuple[str, str, str], dict[int, Mapping[str, Any]]] = {}
        for index, run in enumerate(self.runs):
            for r in run.records:
                if r["task"] == task:
                    keyed.setdefault(_row_key(r), {})[index] = r["values"]
        if not keyed:
            return '<p class="note">No run has results for this task (see Failures).</p>'
        metrics = list(dict.fromkeys(m for run in self.runs if task in run.tasks for m in run.headline(task)))
        has_condition = any(key[2] for key in keyed)
        head = ["Model", "Layer", *(["Condition"] if has_condition else [])]
        head += [f"{m} · {run.label}" for m in metrics for run in self.runs]
        rows = []
        for (model, layer, condition), by_run in keyed.items():
            cells = [_th_row(model), _td(layer)] + ([_td(condition)] if has_condition else [])
            for metric in metrics:
                first = by_run.get(0)
                for index, run in enumerate(self.runs):
                    values = by_run.get(index)
                    if values is None:
                        cells.append(f'<td class="absent" title="not in {_e(run.label)}">—</td>')
                    elif index == 0:
                        cells.append(_value_cell(values, metric))
                    else:  # compared with the first run, which may lack the row
                        label = self.runs[0].label
                        cells.append(
                            _value_cell(values, metric, reference=first or {}, reference_label=label)
                        )
            rows.append("<tr>" + "".join(cells) + "</tr>")
        caption = (
            f"{task}: each run's value; later runs show the difference to {self.runs[0].label} in brackets, "
            "shaded when it differs, bold when both confidence intervals exist and do not overlap"
        )
        return _table(caption, head, rows)

    def plots(self, run: Run, task: str) -> str:
        plots = run.plots(task)
        if not plots:
            return ""
        headline = {safe_filename(f"{task}_{m}") for m in run.headline(task)}
        overview = [p for p in plots if p[0].stem.removesuffix("_by_layer") in headline]
        others = [p for p in plots if p not in overview]
        if not overview:
            overview, others = others[:4], others[4:]
        label = f" ({run.label})" if self.compare else ""
        out = [f"<h3>Plots{_e(label)}</h3>", '<div class="figures">']
        out += [self.figure(p, _alt_text(task, p[0].stem), OVERVIEW_BOX) for p in overview]
        out.append("</div>")
        if others:
            out.append(f"<details><summary>{len(others)} more plot(s){_e(label)}</summary>")
            figures = [self.figure(p, _alt_text(task, p[0].stem), SMALL_BOX) for p in others]
            out.append('<div class="figures">' + "".join(figures) + "</div>")
            out.append("</details>")
        return "\n".join(out)

    def figure(self, files: Sequence[Path], alt: str, box: tuple[int, int]) -> str:
        """A light preview of the plot saved as ``files``, linked to each of them (full size)."""
        links = " · ".join(f'<a href="{_e(self.link(p))}">{_e(p.name)}</a>' for p in files)
        self.previews.append((files, box))
        return (
            f'<figure><a href="{_e(self.link(files[-1]))}" title="full size">'
            f'<img src="{PREVIEW_MARK}{len(self.previews) - 1}{PREVIEW_MARK}" alt="{_e(alt)}" loading="lazy" '
            f'decoding="async"></a><figcaption>{_e(alt)} — full size: {links}</figcaption></figure>'
        )

    def with_previews(self, text: str) -> str:
        """``text`` with each figure's preview in place of its mark."""
        uris = report_previews.preview_uris(self.previews)
        return re.sub(f"{PREVIEW_MARK}(\\d+){PREVIEW_MARK}", lambda m: uris[int(m[1])], text)

    def link(self, path: Path) -> str:
        try:
            relative = os.path.relpath(path.resolve(), self.base)
        except ValueError:  # another drive on Windows
            return path.resolve().as_uri()
        return urllib.parse.quote(Path(relative).as_posix())

    # ---------------------------------------------------------------- human-likeness
    def human_section(self) -> str:
        out = ['<section aria-labelledby="human"><h2 id="human">Human-likeness</h2>']
        out.append(
            '<p class="note">Each model-layer value is placed on the human distribution (its percentile, '
            "inside or outside the humans' 25th–75th percentile band; for RSA, the noise ceiling). "
            "Distance = |value − human median| / human interquartile range (for RSA: |score − ceiling "
            "midpoint| / ceiling width). A model's score on a task is its most human-like layer's distance "
            "(mean over the task's metrics and conditions with human data); the aggregate is the mean over "
            "tasks with human data, smaller is more human-like. The layer is chosen on the same data "
            "(in-sample), which flatters models with many layers: read the ranking as descriptive.</p>"
        )
        if self.compare:
            out.append(self.human_comparison())
            for run in self.runs:
                out.append(f"<details><summary>{_e(run.label)}: ranking, figure and placements</summary>")
                out.append(self.human_block(run))
                out.append("</details>")
        else:
            out.append(self.human_block(self.runs[0]))
        out.append("</section>")
        return "\n".join(out)

    def human_block(self, run: Run) -> str:
        human = run.human
        assert human is not None
        out = []
        if run.human_source:
            out.append(f'<p class="meta">Human percentiles: <code>{_e(run.human_source)}</code></p>')
        for note in [*run.human_notes, *human.notes]:
            out.append(f'<p class="note">Note: {_e(note)}</p>')
        if human.tasks_without_reference:
            out.append(
                '<p class="note">No human reference data for: '
                + ", ".join(f"<strong>{_e(t)}</strong>" for t in human.tasks_without_reference)
                + (
                    ". Give the run a human_percentiles table (experiment file: human_percentiles = "
                    '"FILE"; or facebench report --human-percentiles FILE).</p>'
                    if not human.available
                    else " (not in the ranking).</p>"
                )
            )
        if not human.available:
            return "\n".join(out)
        tasks = human.tasks_with_reference
        head = ["Rank", "Model", "Aggregate distance", *[f"{t} (layer)" for t in tasks]]
        rows = []
        for ranked in human.ranking:
            cells = [
                _num_cell(ranked.rank, text=str(ranked.rank) if ranked.rank else "—"),
                _th_row(ranked.model),
                _num_cell(ranked.aggregate)
                if ranked.aggregate is not None
                else f'<td class="absent">not ranked: no result for {_e(", ".join(ranked.missing))}</td>',
            ]
            for task in tasks:
                part = ranked.parts.get(task)
                if part is None:
                    cells.append('<td class="absent">—</td>')
                    continue
                inside = all(p.placement == "inside" for p in part.placements)
                mark, tick = ("inside", " ✓") if inside else ("outside", "")
                where = "all values inside" if inside else "some value outside"
                title = f"{part.distance!r}: layer {part.layer}, {where} the human band"
                cells.append(
                    f'<td class="n" data-v="{part.distance!r}" title="{_e(title)}">{_fmt(part.distance)} '
                    f'<span class="{mark}">({_e(part.layer)}){tick}</span></td>'
                )
            rows.append("<tr>" + "".join(cells) + "</tr>")
        out.append(
            _table(
                "Models ranked by aggregate distance to the human median (human-IQR units), with each "
                "task's most human-like layer; smaller is more human-like",
                head,
                rows,
            )
        )
        out.append(_ranking_figure(human, f"hl-{self.runs.index(run) + 1}"))
        out.append(self.placements(human))
        return "\n".join(out)

    def placements(self, human: HumanLikeness) -> str:
        head = ["Model", "Layer", "Result", "Value", "Human band", "Percentile", "Placement", "Distance"]
        rows = []
        for p in human.placements:
            percentile = p.percentile
            if percentile is None:
                pct = '<td class="absent">n/a (noise ceiling)</td>'
            else:
                value, qualifier = percentile
                text = {"<": f"below {value:g}th", ">": f"above {value:g}th"}.get(qualifier, f"{value:.0f}th")
                pct = f'<td class="n" data-v="{value!r}" title="{value!r}">{_e(text)}</td>'
            ref = p.reference
            cls = "inside" if p.placement == "inside" else "outside"
            rows.append(
                "<tr>"
                + _th_row(p.model)
                + _td(p.layer)
                + _td(p.column)
                + _num_cell(p.value)
                + f'<td class="n" title="{ref.low!r} to {ref.high!r} ({_e(ref.kind)})">'
                f"{_fmt(ref.low)}–{_fmt(ref.high)}</td>"
                + pct
                + f'<td class="{cls}">{_e(p.placement)}</td>'
                + _num_cell(p.distance)
                + "</tr>"
            )
        return (
            f"<details><summary>Every model-layer on the human distribution ({len(rows)} values)</summary>"
            + _table("Each value's place on its human reference", head, rows)
            + "</details>"
        )

    def human_comparison(self) -> str:
        models = list(
            dict.fromkeys(m.model for run in self.runs for m in (run.human.ranking if run.human else []))
        )
        head = ["Model", *[f"{k} · {run.label}" for run in self.runs for k in ("Rank", "Aggregate")]]
        rows = []
        for model in models:
            cells = [_th_row(model)]
            for run in self.runs:
                ranked = next((m for m in (run.human.ranking if run.human else []) if m.model == model), None)
                if ranked is None or ranked.aggregate is None:
                    cells += ['<td class="absent">—</td>'] * 2
                else:
                    cells += [_num_cell(ranked.rank, text=str(ranked.rank)), _num_cell(ranked.aggregate)]
            rows.append("<tr>" + "".join(cells) + "</tr>")
        if not any(run.human and run.human.available for run in self.runs):
            return '<p class="note">No run has human reference data.</p>'
        return _table("Aggregate human-likeness per run (smaller is more human-like)", head, rows)

    # ---------------------------------------------------------------- failures
    def failures_section(self) -> str:
        out = ['<section aria-labelledby="failures"><h2 id="failures">Failures</h2>']
        for run in self.runs:
            failures = run.document.get("failures") or []
            prefix = f"{run.label}: " if self.compare else ""
            if not failures:
                out.append(f'<p class="note">{_e(prefix)}none: every model ran every task.</p>')
                continue
            rows = []
            for f in failures:
                where = (
                    ", ".join(f"{k} {f[k]}" for k in ("model", "task", "analysis", "layer") if f.get(k))
                    or "run"
                )
                trace = f.get("traceback") or ""
                detail = (
                    f"<details><summary>traceback</summary><pre>{_e(trace)}</pre></details>" if trace else ""
                )
                error = _e(str(f.get("error", "")))
                rows.append(f"<tr>{_td(f.get('stage', ''))}{_td(where)}<td>{error}{detail}</td></tr>")
            out.append(_table(f"{prefix}{len(failures)} failure(s)", ["Stage", "Where", "Error"], rows))
        out.append("</section>")
        return "\n".join(out)

    # ---------------------------------------------------------------- provenance
    def provenance_section(self) -> str:
        flat = [_provenance(run.document) for run in self.runs]
        keys = list(dict.fromkeys(k for f in flat for k in f))
        rows = []
        for key in keys:
            values = [f.get(key) for f in flat]
            differs = self.compare and len(set(values)) > 1
            cells = "".join(
                f"<td><code>{_e(v)}</code></td>" if v is not None else '<td class="absent">—</td>'
                for v in values
            )
            rows.append(
                f'<tr{" class=differs" if differs else ""}><th scope="row">{_e(key)}</th>{cells}</tr>'
            )
        head = ["Field", *([run.label for run in self.runs] if self.compare else ["Value"])]
        caption = "Versions, settings, models, weights and tasks"
        if self.compare:
            caption += "; rows that differ between runs are shaded"
        return (
            '<section aria-labelledby="provenance"><h2 id="provenance">Provenance</h2>'
            + _table(caption, head, rows, sortable=False)
            + "</section>"
        )


# ---------------------------------------------------------------------------- helpers
def _label(runs: Sequence[Run]) -> None:
    """Name each run by its folder, with the parent folder's name when that is needed to tell
    runs apart (or, for one run, to say more than "results")."""
    names = [_folder_name(run.path) for run in runs]
    if len(set(names)) < len(names) or len(runs) == 1:
        names = [f"{run.path.resolve().parent.name}/{_folder_name(run.path)}" for run in runs]
    if len(set(names)) < len(names):
        names = [f"run {i + 1}" for i in range(len(runs))]
    for run, name in zip(runs, names, strict=True):
        run.label = name


def _folder_name(path: Path) -> str:
    """The folder's name; for a run still being written (:mod:`facebench.runfolder`'s hidden
    ``.<name>.facebench-<hex>``), the name it will have."""
    name = path.resolve().name
    staging = STAGING_NAME.match(name)
    return staging["name"] if staging else name


def _provenance(document: Mapping[str, Any]) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key in (
        "facebench_version",
        "schema_version",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "command_line",
    ):
        if document.get(key) is not None:
            flat[key] = str(document[key])
    for group in ("code", "code_identity", "environment", "plugins_used", "settings"):
        value = document.get(group)
        if isinstance(value, Mapping):
            for key, item in value.items():
                flat[f"{group} · {key}"] = _plain(item)
        elif value is not None:
            flat[group] = _plain(value)
    experiment = document.get("experiment") or {}
    if isinstance(experiment, Mapping) and experiment.get("source"):
        flat["experiment file"] = str(experiment["source"])
    for kind in ("models", "tasks"):
        for item in document.get(kind) or []:
            for key, value in item.items():
                if key != "name":
                    flat[f"{kind[:-1]} {item.get('name')} · {key}"] = _plain(value)
    return flat


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _is_interval(metric: str) -> bool:
    return metric in (CEILING_LOWER, CEILING_UPPER) or metric.endswith(INTERVAL_SUFFIXES)


def _interval(values: Mapping[str, Any], metric: str) -> tuple[float, float, str] | None:
    """``(low, high, kind)`` recorded beside ``metric``, if any."""
    low, high = values.get(f"{metric} CI Low"), values.get(f"{metric} CI High")
    if _finite(low) and _finite(high):
        return float(low), float(high), "CI"
    if metric == RSA_SCORE and _finite(values.get(CEILING_LOWER)) and _finite(values.get(CEILING_UPPER)):
        return float(values[CEILING_LOWER]), float(values[CEILING_UPPER]), "noise ceiling"
    std, value = values.get(f"{metric} Std"), values.get(metric)
    if _finite(std) and _finite(value):
        return float(value) - float(std), float(value) + float(std), "± std"
    return None


def _value_cell(
    values: Mapping[str, Any],
    metric: str,
    reference: Mapping[str, Any] | None = None,
    reference_label: str = "",
) -> str:
    value = values.get(metric)
    if not _finite(value):
        why = "not recorded" if metric not in values else "not computed (NaN)"
        return f'<td class="n absent" data-v="" title="{_e(why)}">—</td>'
    value = float(value)
    interval = _interval(values, metric)
    title, text = repr(value), _fmt(value)
    if interval:
        low, high, kind = interval
        if kind == "± std":
            std = values[f"{metric} Std"]
            title += f" ± {std!r} (std)"
            text += f' <span class="ci">± {_fmt(std)}</span>'
        else:
            title += f" ({kind} {low!r} to {high!r})"
            text += f' <span class="ci">[{_fmt(low)}, {_fmt(high)}]</span>'
    lower, upper = values.get(CEILING_LOWER), values.get(CEILING_UPPER)
    if metric == RSA_SCORE and _finite(lower) and _finite(upper) and interval and interval[2] == "CI":
        title += f"; noise ceiling {lower!r} to {upper!r}"
    cls = "n"
    if reference is not None:
        base = reference.get(metric)
        if _finite(base):
            delta = value - float(base)
            if abs(delta) > DIFF_TOLERANCE * max(1.0, abs(value)):
                cls += " diff"
                other = _interval(reference, metric)
                if interval and other and interval[2] == other[2] == "CI" and not _overlap(interval, other):
                    cls = "n sig"
                    title += f"; its CI does not overlap {reference_label}'s"
            title += f"; difference to {reference_label}: {delta!r}"
            text += f' <span class="ci">({delta:+.3g})</span>'
        else:
            title += f"; {reference_label} has no value"
            cls += " diff"
    return f'<td class="{cls}" data-v="{value!r}" title="{_e(title)}">{text}</td>'


def _row_key(record: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(record["model"]), str(record["layer"]), str(record.get("condition") or "")


def _difference_cells(
    first: Mapping[Any, Mapping[str, Any]], later: Mapping[Any, Mapping[str, Any]], metric: str
) -> list[str]:
    """Four cells: how many of the model-layers both runs have differ in ``metric``, how many with
    confidence intervals apart, the mean and the largest difference (``later`` minus ``first``)."""
    pairs = [(first[k], later[k]) for k in first if k in later]
    pairs = [(a, b) for a, b in pairs if _finite(a.get(metric)) and _finite(b.get(metric))]
    deltas = [float(b[metric]) - float(a[metric]) for a, b in pairs]
    differ = sum(
        abs(d) > DIFF_TOLERANCE * max(1.0, abs(float(b[metric])))
        for d, (_, b) in zip(deltas, pairs, strict=True)
    )
    apart = 0
    for a, b in pairs:
        x, y = _interval(a, metric), _interval(b, metric)
        apart += bool(x and y and x[2] == y[2] == "CI" and not _overlap(x, y))
    alone = len(set(first) ^ set(later))
    text = f"{differ} of {len(pairs)}" + (f" ({alone} in one run only)" if alone else "")
    if not deltas:
        return [f'<td class="n absent">{_e(text)}</td>'] + ['<td class="n absent" data-v="">—</td>'] * 3
    mean, largest = sum(deltas) / len(deltas), max(deltas, key=abs)
    return [
        f'<td class="n{" diff" if differ else ""}" data-v="{differ}">{_e(text)}</td>',
        f'<td class="n{" sig" if apart else ""}" data-v="{apart}">{apart}</td>',
        _num_cell(mean, text=f"{mean:+.3g}"),
        _num_cell(largest, text=f"{largest:+.3g}"),
    ]


def _overlap(a: tuple[float, float, str], b: tuple[float, float, str]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _num_cell(value: float | int | None, text: str | None = None) -> str:
    if value is None or not _finite(value):
        return '<td class="n absent" data-v="">—</td>'
    shown = _e(text if text is not None else _fmt(value))
    return f'<td class="n" data-v="{value!r}" title="{value!r}">{shown}</td>'


def _fmt(value: Any) -> str:
    """Three decimals; three significant digits for very large or small magnitudes."""
    if not _finite(value):
        return "—"
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.3g}"
    return f"{value:.3f}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _e(text: Any) -> str:
    return html.escape(str(text).replace("\x00", ""), quote=True)  # NUL: never valid, and marks previews


def _td(text: Any) -> str:
    return f"<td>{_e(text)}</td>"


def _th_row(text: Any) -> str:
    return f'<th scope="row">{_e(text)}</th>'


def _table(caption: str, head: Iterable[str], rows: Sequence[str], sortable: bool = True) -> str:
    sort = ' aria-sort="none"' if sortable else ""
    header = "".join(
        f'<th scope="col"{sort}><button type="button">{_e(h)}</button></th>'
        if sortable
        else f'<th scope="col">{_e(h)}</th>'
        for h in head
    )
    return (
        f'<div class="scroll"><table><caption>{_e(caption)}</caption>'
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _alt_text(task: str, stem: str) -> str:
    prefix = safe_filename(task) + "_"
    words = stem.removeprefix(prefix).replace("_", " ").strip()
    if stem.endswith("_by_layer"):
        return f"{task}: {words.removesuffix(' by layer')} by layer depth, one line per model"
    if "scatter" in stem:
        which = words.replace("scatter", "").strip()
        return f"{task}: model against human distances, one point per pair ({which})"
    return f"{task}: {words}, one bar per model and layer"


def _analysis_alt_text(analysis: str, stem: str) -> str:
    words = stem.removeprefix(safe_filename(analysis) + "_").replace("_", " ").strip()
    if "cka" in analysis.lower():
        return (
            f"{analysis}: heatmap of {words + ' ' if words else ''}CKA between every pair of model-layers "
            "(rows and columns ordered by model, then layer; lines separate models; brighter is more similar)"
        )
    return f"{analysis}: {words}"


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def script_hash(script: str) -> str:
    """The Content-Security-Policy source that allows exactly the page's one script element
    (``<script>`` newline, ``script``, newline ``</script>``), and no other inline script."""
    import hashlib

    digest = hashlib.sha256(f"\n{script}\n".encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _asset(name: str) -> str:
    return resources.files("facebench").joinpath("report_assets", name).read_text(encoding="utf-8")


def _ranking_figure(human: HumanLikeness, key: str) -> str:
    """An inline SVG dot plot: one row per model (ranked order), each task's distance as a marker,
    the aggregate as a bar."""
    tasks = human.tasks_with_reference
    models = human.ranking
    shapes = ["circle", "square", "diamond", "triangle", "cross"]
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
    distances = [p.distance for m in models for p in m.parts.values()] + [
        m.aggregate for m in models if m.aggregate is not None
    ]
    top = max([1.0, *distances])
    left, right, row, width = 190, 30, 22, 760
    legend_h = 22 * math.ceil(len(tasks) / 3)
    height = 50 + row * len(models) + 40 + legend_h
    plot_w = width - left - right

    def x(value: float) -> float:
        return left + plot_w * value / top

    def marker(index: int, cx: float, cy: float) -> str:
        colour, shape = colours[index % len(colours)], shapes[index % len(shapes)]
        if shape == "circle":
            return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{colour}"/>'
        if shape == "square":
            return f'<rect x="{cx - 4.5:.1f}" y="{cy - 4.5:.1f}" width="9" height="9" fill="{colour}"/>'
        if shape == "diamond":
            return f'<path d="M{cx:.1f} {cy - 6:.1f}l6 6-6 6-6-6z" fill="{colour}"/>'
        if shape == "triangle":
            return f'<path d="M{cx:.1f} {cy - 6:.1f}l6 10h-12z" fill="{colour}"/>'
        return (
            f'<path d="M{cx - 5:.1f} {cy - 5:.1f}l10 10m0-10l-10 10" stroke="{colour}" stroke-width="2.5"/>'
        )

    parts = []
    step = _nice_step(top)
    tick = 0.0
    while tick <= top + 1e-9:
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="40" y2="{40 + row * len(models)}" '
            f'style="stroke:var(--line)"/><text x="{x(tick):.1f}" y="{54 + row * len(models)}" '
            f'text-anchor="middle">{tick:g}</text>'
        )
        tick += step
    parts.append(
        f'<line x1="{x(0.5):.1f}" x2="{x(0.5):.1f}" y1="40" y2="{40 + row * len(models)}" '
        'style="stroke:var(--band)" stroke-dasharray="4 3"/>'
        f'<text x="{x(0.5) + 4:.1f}" y="36">0.5 IQR</text>'
        f'<text x="{left}" y="14">'
        "distance to the human median (human IQRs); smaller is more human-like</text>"
    )
    for i, ranked in enumerate(models):
        cy = 40 + row * i + row / 2
        name = ranked.model if len(ranked.model) <= 26 else ranked.model[:25] + "…"
        rank = f"{ranked.rank}. " if ranked.rank else "– "
        parts.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end">{_e(rank + name)}</text>')
        if ranked.aggregate is not None:
            parts.append(
                f'<rect x="{left}" y="{cy - 3:.1f}" width="{x(ranked.aggregate) - left:.1f}" height="6" '
                f'style="fill:var(--band)" opacity="0.55">'
                f"<title>{_e(ranked.model)}: aggregate {ranked.aggregate:.3f}</title></rect>"
            )
        for t, task in enumerate(tasks):
            part = ranked.parts.get(task)
            if part is not None:
                parts.append(
                    f"<g><title>{_e(ranked.model)}, {_e(task)}: {part.distance:.3f} "
                    f"(layer {_e(part.layer)})</title>" + marker(t, x(part.distance), cy) + "</g>"
                )
    legend_y = 40 + row * len(models) + 40
    for t, task in enumerate(tasks):
        lx, ly = left + (t % 3) * (plot_w / 3), legend_y + 22 * (t // 3)
        label = task if len(task) <= 30 else task[:29] + "…"
        parts.append(marker(t, lx + 6, ly - 4) + f'<text x="{lx + 16:.1f}" y="{ly:.1f}">{_e(label)}</text>')
    parts.append(
        f'<rect x="{left + plot_w * 0.75:.1f}" y="{legend_y + legend_h - 9}" width="24" height="6" '
        f'style="fill:var(--band)" opacity="0.55"/><text x="{left + plot_w * 0.75 + 30:.1f}" '
        f'y="{legend_y + legend_h - 3}">aggregate</text>'
    )
    description = "; ".join(
        f"{m.model}: aggregate {m.aggregate:.3f}" if m.aggregate is not None else f"{m.model}: not ranked"
        for m in models
    )
    return (
        f'<figure class="chart"><svg role="img" aria-labelledby="{key}-title {key}-desc" '
        f'viewBox="0 0 {width} {height}" width="{width}" style="max-width:100%;height:auto">'
        f'<title id="{key}-title">Human-likeness ranking</title>'
        f'<desc id="{key}-desc">Distance of each model\'s most human-like layer to the human median '
        "per task. "
        f"{_e(description)}</desc>" + "".join(parts) + "</svg>"
        "<figcaption>Per model (ranked), each task's distance of its most human-like layer to the human "
        "median in human-IQR units (markers) and their mean (bar). The dashed line marks 0.5 IQR. "
        "Same numbers as the table above.</figcaption></figure>"
    )


def _nice_step(top: float) -> float:
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
