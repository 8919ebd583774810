"""Experiment files: which models and tasks to run, and where to write the results.

An experiment is a TOML file (or the same thing from ``facebench run`` flags)::

    output = "results"              # folder for results.json, CSVs and plots
    batch_size = 32
    device = "auto"                 # default for every model
    cache_dir = "~/.cache/facebench"  # or: cache = false (a temporary cache)
    human_percentiles = "human_percentiles.csv"  # optional human bands on layer plots
    executor = "local"              # who embeds: local or ray (facebench list executors)
    executor_options = { address = "auto" }  # the executor's options (ray: address, num_actors, ...)
    data_path = "auto"              # auto, cpu or device: where JPEGs are decoded (facebench.datapath)
    channels_last = false           # run the networks in channels-last memory format (CNNs on GPUs)
    torch_compile = false           # compile each network's forward with torch.compile
    dataset = "lfw"                 # a registered dataset: its protocol, or its files for [[tasks]]
    # benchmark = "lab-faces"       # (instead) a registered benchmark: its tasks, stimuli, human data
    data_dir = "datasets"           # folder of dataset copies (DIR/<name>); as --data-dir

    [[models]]
    plugin = "vgg16"                # a registered model (facebench list models)
    name = "vgg16-random"           # optional; defaults to the plugin name
    layers = ["features.4", "features.9"]
    reduction = "mean"
    options = { pretrained = false }

    [[tasks]]
    plugin = "accuracy"             # a registered task (facebench list tasks)
    name = "Verification"           # optional; defaults to the pairs file's name
    pairs = "stimuli/verification.csv"
    images = "stimuli/images"
    metric = "cosine"
    options = { label_column = "truth" }

    [[tasks]]
    plugin = "rsa"                  # a task that reads embeddings
    pairs = "similarity.csv"
    table = "stimuli/faces.csv"     # an images table: an "image" column + per-image columns
    images = "stimuli/images"

    [[analyses]]
    plugin = "cka"                  # an analysis across models (facebench list analyses)
    options = { debiased = true }   # optional: table = "...", images = "..." (default: the tasks' images)

Other keys of a ``[[models]]``, ``[[tasks]]`` or ``[[analyses]]`` table are options too (as
under ``options``). A task says whether it reads a pairs file and/or an images table
(:attr:`facebench.task.BaseTask.pairs_file`, :attr:`~facebench.task.BaseTask.images_table`).
A model's preprocessing options (``resize``, ``crop``, ``mean``, ``std``, ``grayscale``,
``interpolation``; :mod:`facebench.preprocessing`) change what its weights were trained with:
``resize = [224, 224]`` and ``crop = "none"`` squash every image to 224 x 224; ``resize = 64``
and ``crop = 64`` run a CNN faster on small images (a ViT with fixed position embeddings may not
accept other sizes).
``dataset`` and ``benchmark`` are the ``--dataset``/``--benchmark`` flags written down (a name, or
a table: ``dataset = { name = "lfw", path = "copies/lfw" }``, ``benchmark = { name = "...", images
= "..." }``); :meth:`Experiment.apply_sources` turns them into tasks for the file and the flags alike.
Relative paths (``output``, ``cache_dir``, ``human_percentiles``, ``data_dir``, ``pairs``,
``images``, a dataset's ``path``, a benchmark's ``images`` and options ending in ``_path``)
resolve against the TOML file's folder.

:meth:`Experiment.prepare` checks everything that can be checked without building a network
(plugin names, options, metrics, pairs files, columns and images) before any model is built.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebench.datasets import DATASET_OPTIONS
from facebench.errors import ConfigError, FacebenchError
from facebench.options import parse_spec_string
from facebench.registry import Registry, check_options, get_registry
from facebench.results import check_distinct_file_names
from facebench.runfolder import check_output_folder
from facebench.textfiles import read_utf8

if TYPE_CHECKING:
    from facebench.executors import Executor
    from facebench.manager import MultiModelTaskManager
    from facebench.model import BaseModel
    from facebench.task import BaseTask

USER_CACHE = "user-cache"
TOP_LEVEL_KEYS = frozenset(
    {
        "output",
        "batch_size",
        "device",
        "cache_dir",
        "cache",
        "num_workers",
        "human_percentiles",
        "models",
        "tasks",
        "analyses",
        "executor",
        "executor_options",
        "data_path",
        "channels_last",
        "torch_compile",
        "dataset",
        "benchmark",
        "data_dir",
    }
)
SOURCE_OPTIONS = {"dataset": DATASET_OPTIONS, "benchmark": frozenset({"images"})}
MODEL_KEYS = {"layers": "extract_layers"}
TASK_KEYS = {
    "pairs": "pairs_file_path",
    "table": "table_path",
    "images": "images_path",
    "metric": "distance_metric",
}
ANALYSIS_KEYS = {"table": "table_path", "images": "images_path"}


@dataclass
class PluginConfig:
    """One entry of an experiment's lists: a registered plugin and its constructor options."""

    plugin: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.options.get("name") or self.plugin)


class ModelConfig(PluginConfig):
    """One ``[[models]]`` entry: a registered model and its constructor options."""


class TaskConfig(PluginConfig):
    """One ``[[tasks]]`` entry: a registered task and its constructor options."""

    @property
    def name(self) -> str:
        if self.options.get("name"):
            return str(self.options["name"])
        source = self.options.get("pairs_file_path") or self.options.get("table_path")
        return Path(source).stem if source else self.plugin


class AnalysisConfig(PluginConfig):
    """One ``[[analyses]]`` entry: a registered analysis and its constructor options."""


@dataclass(frozen=True)
class DataSources:
    """The dataset and benchmark an experiment names (keys of its file, or flags) before
    :meth:`Experiment.apply_sources` turns them into tasks; ``where`` names the file."""

    dataset: str | tuple[str, dict[str, Any]] | None = None
    benchmark: str | tuple[str, dict[str, Any]] | None = None
    data_dir: Path | None = None
    where: str | None = None


@dataclass
class Experiment:
    """Models, tasks and run settings, with paths already resolved."""

    models: list[ModelConfig]
    tasks: list[TaskConfig]
    output: Path = Path("facebench-results")
    batch_size: int = 32
    device: str | None = None
    cache_dir: str | Path | None = USER_CACHE
    num_workers: int | None = None
    human_percentiles: Path | None = None
    source: Path | None = None
    analyses: list[AnalysisConfig] = field(default_factory=list)
    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    data_path: str = "auto"
    channels_last: bool = False
    torch_compile: bool = False
    dataset: dict[str, Any] | None = None
    benchmark: dict[str, Any] | None = None
    sources: DataSources = field(default_factory=DataSources)

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_toml(cls, path: str | Path, apply_sources: bool = True) -> Experiment:
        """Read an experiment file; relative paths resolve against its folder. ``apply_sources=False``
        leaves its dataset and benchmark in :attr:`sources` (for flags to amend)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"experiment file {str(path)!r} does not exist")
        try:
            data = tomllib.loads(read_utf8(path, "experiment file", ConfigError))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        experiment = cls.from_mapping(
            data, base_dir=path.parent, where=str(path), apply_sources=apply_sources
        )
        experiment.source = path
        return experiment

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        base_dir: str | Path = ".",
        where: str = "experiment",
        apply_sources: bool = True,
    ) -> Experiment:
        """Build from a parsed TOML document (or an equivalent dict)."""
        base = Path(base_dir)
        unknown = sorted(set(data) - TOP_LEVEL_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known keys: {', '.join(sorted(TOP_LEVEL_KEYS))}"
            )
        models = [
            model_config(entry, base, f"{where}: models[{i}]")
            for i, entry in enumerate(_tables(data, "models", where))
        ]
        tasks = [
            task_config(entry, base, f"{where}: tasks[{i}]")
            for i, entry in enumerate(_tables(data, "tasks", where))
        ]
        analyses = [
            analysis_config(entry, base, f"{where}: analyses[{i}]")
            for i, entry in enumerate(_tables(data, "analyses", where))
        ]
        cache_dir: str | Path | None = USER_CACHE
        if data.get("cache") is False:
            cache_dir = None
        elif "cache_dir" in data:
            cache_dir = _resolve(base, data["cache_dir"], f"{where}: cache_dir")
        experiment = cls(
            models=models,
            tasks=tasks,
            analyses=analyses,
            output=_resolve(base, data.get("output", "facebench-results"), f"{where}: output"),
            batch_size=_positive_int(data.get("batch_size", 32), f"{where}: batch_size"),
            device=_optional_str(data.get("device"), f"{where}: device"),
            cache_dir=cache_dir,
            num_workers=_workers(data.get("num_workers"), f"{where}: num_workers"),
            human_percentiles=(
                _resolve(base, data["human_percentiles"], f"{where}: human_percentiles")
                if data.get("human_percentiles")
                else None
            ),
            executor=_optional_str(data.get("executor"), f"{where}: executor") or "local",
            executor_options=_mapping(data.get("executor_options", {}), f"{where}: executor_options"),
            data_path=_optional_str(data.get("data_path"), f"{where}: data_path") or "auto",
            channels_last=_bool(data.get("channels_last", False), f"{where}: channels_last"),
            torch_compile=_bool(data.get("torch_compile", False), f"{where}: torch_compile"),
            sources=DataSources(
                dataset=_source(data.get("dataset"), "dataset", base, where),
                benchmark=_source(data.get("benchmark"), "benchmark", base, where),
                data_dir=(
                    _resolve(base, data["data_dir"], f"{where}: data_dir") if "data_dir" in data else None
                ),
                where=where,
            ),
        )
        if apply_sources:
            experiment.apply_sources(given_tasks=bool(tasks))
        return experiment

    def apply_sources(self, given_tasks: bool, images: str | None = None) -> None:
        """Turn :attr:`sources` into tasks: the benchmark's replace the experiment's; the dataset's
        protocol replaces them too, unless ``given_tasks``: then its files fill those tasks."""
        sources = self.sources
        try:
            if sources.benchmark:
                from facebench.benchmarks import apply_benchmark

                apply_benchmark(
                    self, sources.benchmark, given_tasks=given_tasks, images=images, data_dir=sources.data_dir
                )
            if sources.dataset:
                from facebench.datasets import dataset_tasks

                self.tasks, self.dataset = dataset_tasks(
                    sources.dataset, self.tasks if given_tasks else [], sources.data_dir
                )
        except FacebenchError as exc:
            if sources.where is None:
                raise
            raise type(exc)(f"{sources.where}: {exc}") from None

    # ------------------------------------------------------------------ checking and building
    def check(self, registry: Registry | None = None) -> None:
        """Plugin names, options and metric names: fail before anything is built or read."""
        registry = registry or get_registry()
        if not self.models:
            raise ConfigError("the experiment has no models; add a [[models]] table or --model NAME")
        if not self.tasks and not self.analyses:
            raise ConfigError("the experiment has no tasks; add a [[tasks]] table or --task NAME")
        _check_unique([m.name for m in self.models], "model")
        _check_unique([t.name for t in self.tasks], "task")
        _check_unique([a.name for a in self.analyses], "analysis")
        for kind, configs in (("model", self.models), ("task", self.tasks), ("analysis", self.analyses)):
            for config in configs:
                factory = registry.get(kind, config.plugin).spec.load()
                options = self._options(kind, config, factory)
                check_options(kind, config.plugin, factory, options)
        for task in self.tasks:
            metric = task.options.get("distance_metric")
            if isinstance(metric, str):
                registry.get("metric", metric)
            factory = registry.get("task", task.plugin).spec.load()
            for key, word, flag, need in (
                ("pairs_file_path", "pairs", "--pairs", getattr(factory, "pairs_file", "required")),
                ("table_path", "table", "--table", getattr(factory, "images_table", "unused")),
                ("images_path", "images", "--images", "required"),
            ):
                if need == "required" and key not in task.options:
                    raise ConfigError(
                        f"task {task.name!r} has no {word} ({word} = ... in the file, or {flag})"
                    )
        if self.human_percentiles is not None and not self.human_percentiles.is_file():
            raise ConfigError(f"human_percentiles file {str(self.human_percentiles)!r} does not exist")
        check_output_folder(self.output)
        from facebench.datapath import DATA_PATHS

        if self.data_path not in DATA_PATHS:
            raise ConfigError(f"data_path {self.data_path!r} is not one of {', '.join(DATA_PATHS)}")
        self.create_executor(registry)  # an executor that cannot run (Ray not installed) fails now

    def prepare(self, registry: Registry | None = None) -> tuple[list[BaseTask], list[BaseModel]]:
        """Check, then create the tasks (reading and validating their pairs files and images),
        then the models (cheap: networks are built on first use)."""
        registry = registry or get_registry()
        self.check(registry)
        tasks = [self._create(registry, "task", config) for config in self.tasks]
        models = [self._create(registry, "model", config) for config in self.models]
        return tasks, models

    def create_executor(self, registry: Registry | None = None) -> Executor:
        """The executor this experiment names, with its options."""
        registry = registry or get_registry()
        return registry.create("executor", self.executor, **self.executor_options)

    def _create(self, registry: Registry, kind: str, config: ModelConfig | TaskConfig) -> Any:
        factory = registry.get(kind, config.plugin).spec.load()  # type: ignore[arg-type]
        options = self._options(kind, config, factory)
        return registry.create(kind, config.plugin, **options)

    def manager(self, registry: Registry | None = None, progress: bool = True) -> MultiModelTaskManager:
        """A manager holding this experiment's models and tasks (prepared and checked)."""
        from facebench.manager import MultiModelTaskManager

        registry = registry or get_registry()
        tasks, models = self.prepare(registry)
        analyses = [self._create(registry, "analysis", config) for config in self.analyses]
        sources = {}
        for kind, configs in (("model", self.models), ("task", self.tasks), ("analysis", self.analyses)):
            for config in configs:
                entry = registry.get(kind, config.plugin)
                sources[f"{kind}:{config.name}"] = {
                    "registered_name": config.plugin,
                    "plugin": entry.plugin,
                    "plugin_version": entry.plugin_version,
                }
        return MultiModelTaskManager(
            models=models,
            tasks=tasks,
            batch_size=self.batch_size,
            cache_dir=self.cache_dir,
            num_workers=self.num_workers,
            progress=progress,
            human_percentiles=self.human_percentiles,
            plugin_sources=sources,
            executor=self.create_executor(registry),
            data_path=self.data_path,
            channels_last=self.channels_last,
            torch_compile=self.torch_compile,
            analyses=analyses,
        )

    def _options(self, kind: str, config: ModelConfig | TaskConfig, factory: Any) -> dict[str, Any]:
        options = dict(config.options)
        options.setdefault("name", config.name)
        if (
            kind == "model"
            and self.device is not None
            and "device" not in options
            and _accepts(factory, "device")
        ):
            options["device"] = self.device
        return options

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment, for results.json."""
        return {
            "source": str(self.source) if self.source else None,
            "output": str(self.output),
            "batch_size": self.batch_size,
            "device": self.device,
            "cache_dir": None if self.cache_dir is None else str(self.cache_dir),
            "executor": self.executor,
            "executor_options": self.executor_options,
            "data_path": self.data_path,
            "channels_last": self.channels_last,
            "torch_compile": self.torch_compile,
            "models": [{"plugin": m.plugin, "options": m.options} for m in self.models],
            "tasks": [{"plugin": t.plugin, "options": t.options} for t in self.tasks],
            "analyses": [{"plugin": a.plugin, "options": a.options} for a in self.analyses],
            "dataset": self.dataset,
            "benchmark": self.benchmark,
        }


def run_experiment(
    experiment: Experiment, progress: bool = True, print_log: bool = True
) -> MultiModelTaskManager:
    """Prepare, run every model on every task, and export everything to ``experiment.output``."""
    with experiment.manager(progress=progress) as manager:
        manager.experiment = experiment.to_dict()
        manager.run_all_tasks_all_models(export_path=experiment.output, print_log=print_log)
    return manager


def model_config(entry: Mapping[str, Any], base: Path, where: str) -> ModelConfig:
    """A ``[[models]]`` table (or ``--model`` options) as a :class:`ModelConfig`."""
    plugin, options = _split_entry(entry, where)
    for key, option in MODEL_KEYS.items():
        if key in options:
            _move(options, key, option, where)
    if isinstance(options.get("extract_layers"), str):
        options["extract_layers"] = [
            layer.strip() for layer in options["extract_layers"].split(",") if layer.strip()
        ]
    _resolve_path_options(options, base, where)
    return ModelConfig(plugin, options)


def task_config(entry: Mapping[str, Any], base: Path, where: str) -> TaskConfig:
    """A ``[[tasks]]`` table (or ``--task`` options) as a :class:`TaskConfig`."""
    plugin, options = _split_entry(entry, where)
    for key, option in TASK_KEYS.items():
        if key in options:
            _move(options, key, option, where)
    for key in ("pairs_file_path", "images_path"):
        if key in options:
            options[key] = _resolve(base, options[key], f"{where}: {key}")
    _resolve_path_options(options, base, where)
    return TaskConfig(plugin, options)


def analysis_config(entry: Mapping[str, Any], base: Path, where: str) -> AnalysisConfig:
    """An ``[[analyses]]`` table (or ``--analysis`` options) as an :class:`AnalysisConfig`."""
    plugin, options = _split_entry(entry, where)
    for key, option in ANALYSIS_KEYS.items():
        if key in options:
            _move(options, key, option, where)
    if "images_path" in options:
        options["images_path"] = _resolve(base, options["images_path"], f"{where}: images_path")
    _resolve_path_options(options, base, where)
    return AnalysisConfig(plugin, options)


def _source(value: Any, key: str, base: Path, where: str) -> tuple[str, dict[str, Any]] | None:
    """``dataset = "lfw"`` (as the flag: ``"lfw:path=DIR"``) or ``dataset = { name = "lfw", path
    = "DIR" }`` as ``(name, options)``, its paths resolved against the file's folder."""
    if value is None:
        return None
    known = SOURCE_OPTIONS[key]
    if isinstance(value, str):
        name, options = parse_spec_string(value)
        value = {"name": name, **options}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        raise ConfigError(
            f'{where}: {key} must be a name ({key} = "NAME") or a table with name = "NAME" '
            f"and optionally {', '.join(sorted(known))}"
        )
    options = {k: v for k, v in value.items() if k != "name"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"{where}: {key}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known: name, {', '.join(sorted(known))}"
        )
    return value["name"], {k: _resolve(base, v, f"{where}: {key}.{k}") for k, v in options.items()}


def _split_entry(entry: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a table, got {entry!r}")
    entry = dict(entry)
    plugin = entry.pop("plugin", None)
    if not isinstance(plugin, str) or not plugin:
        raise ConfigError(f'{where}: needs plugin = "NAME" (see facebench list)')
    nested = entry.pop("options", {})
    if not isinstance(nested, Mapping):
        raise ConfigError(f"{where}: options must be a table, e.g. options = {{ key = value }}")
    clash = sorted(set(nested) & set(entry))
    if clash:
        raise ConfigError(f"{where}: {', '.join(map(repr, clash))} given both directly and under options")
    return plugin, {**entry, **nested}


def _move(options: dict[str, Any], key: str, option: str, where: str) -> None:
    if option in options:
        raise ConfigError(f"{where}: give {key!r} or {option!r}, not both")
    options[option] = options.pop(key)


def _resolve_path_options(options: dict[str, Any], base: Path, where: str) -> None:
    for key, value in list(options.items()):
        if key.endswith("_path") and key not in ("pairs_file_path", "images_path") and isinstance(value, str):
            options[key] = str(_resolve(base, value, f"{where}: {key}"))


def _resolve(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigError(f"{where}: expected a path, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _tables(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {key} must be a list of tables ([[{key}]])")
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _workers(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: expected a number of workers (0 or more), got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a table, e.g. {{ key = value }}, got {value!r}")
    return dict(value)


def _optional_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value


def _check_unique(names: Sequence[str], kind: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(
                f'two {kind}s are named {name!r}; give each a distinct name = "..." '
                f"(results are keyed by {kind} name)"
            )
        seen.add(name)
    check_distinct_file_names(names, kind)


def _accepts(factory: Any, parameter: str) -> bool:
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    return parameter in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _task_reads(plugin: str, attribute: str) -> bool:
    """Whether the task ``plugin`` reads a pairs file / images table (True if it is unknown:
    :meth:`Experiment.check` then reports the name)."""
    try:
        factory = get_registry().get("task", plugin).spec.load()
    except Exception:
        return True
    default = "required" if attribute == "pairs_file" else "unused"
    return getattr(factory, attribute, default) != "unused"


def experiment_from_flags(
    experiment_file: str | None,
    models: Sequence[str],
    tasks: Sequence[str],
    pairs: str | None,
    images: str | None,
    layers: str | None,
    metric: str | None,
    device: str | None,
    batch_size: int | None,
    output: str | None,
    cache_dir: str | None,
    no_cache: bool,
    executor: str | None = None,
    ray_address: str | None = None,
    data_path: str | None = None,
    channels_last: bool = False,
    torch_compile: bool = False,
    table: str | None = None,
    analyses: Sequence[str] = (),
    dataset: str | None = None,
    benchmark: str | None = None,
    data_dir: str | None = None,
) -> Experiment:
    """The experiment of ``facebench run``: the file (if any), with the flags applied on top.

    ``--model``/``--task``/``--analysis`` replace the file's lists; ``--pairs``, ``--table``,
    ``--images`` and ``--metric`` fill in tasks that lack them (``--pairs`` only tasks that read a
    pairs file, ``--table`` only tasks that read an images table); ``--layers`` fills in models
    that lack layers.
    ``--executor NAME:key=value,...`` replaces the file's executor; ``--ray-address ADDR`` sets
    the Ray executor's address (and picks the Ray executor when none is named).
    ``--benchmark NAME`` replaces the tasks with the benchmark's; ``--dataset NAME`` runs its
    protocol, or fills its files into the ``--task`` entries (:mod:`facebench.datasets`); each
    replaces the file's ``benchmark``/``dataset`` key, ``--data-dir`` its ``data_dir``.
    """
    if experiment_file:
        experiment = Experiment.from_toml(experiment_file, apply_sources=False)
    elif models or tasks or analyses or dataset or benchmark:
        experiment = Experiment(models=[], tasks=[])
    else:
        raise ConfigError(
            "give an EXPERIMENT.toml file, or --model NAME and --task NAME (see facebench run --help)"
        )
    cwd = Path.cwd()
    if models:
        specs = [parse_spec_string(text) for text in models]
        experiment.models = [model_config({"plugin": n, **o}, cwd, f"--model {n}") for n, o in specs]
    if tasks:
        specs = [parse_spec_string(text) for text in tasks]
        experiment.tasks = [task_config({"plugin": n, **o}, cwd, f"--task {n}") for n, o in specs]
    if analyses:
        specs = [parse_spec_string(text) for text in analyses]
        experiment.analyses = [analysis_config({"plugin": n, **o}, cwd, f"--analysis {n}") for n, o in specs]
    named = experiment.sources
    flagged = bool(dataset or benchmark)
    experiment.sources = DataSources(
        dataset=dataset or named.dataset,
        benchmark=benchmark or named.benchmark,
        data_dir=Path(data_dir) if data_dir else named.data_dir,
        where=None if flagged else named.where,
    )
    # the file's [[tasks]] take the file's dataset; --dataset/--benchmark take only --task entries
    experiment.apply_sources(
        given_tasks=bool(tasks) or (not flagged and bool(experiment.tasks)), images=images
    )
    for task in experiment.tasks:
        if pairs and "pairs_file_path" not in task.options and _task_reads(task.plugin, "pairs_file"):
            task.options["pairs_file_path"] = Path(pairs)
        if table and "table_path" not in task.options and _task_reads(task.plugin, "images_table"):
            task.options["table_path"] = Path(table)
        if images and "images_path" not in task.options:
            task.options["images_path"] = Path(images)
        if metric and "distance_metric" not in task.options:
            task.options["distance_metric"] = metric
    if layers:
        names = [layer.strip() for layer in layers.split(",") if layer.strip()]
        for model in experiment.models:
            model.options.setdefault("extract_layers", names)
    if device:
        experiment.device = device
    if batch_size is not None:
        experiment.batch_size = batch_size
    if output:
        experiment.output = Path(output)
    if no_cache:
        experiment.cache_dir = None
    elif cache_dir:
        experiment.cache_dir = Path(cache_dir)
    if executor:
        experiment.executor, experiment.executor_options = parse_spec_string(executor)
    if ray_address:
        if executor is None and experiment.executor == "local":
            experiment.executor = "ray"
        if experiment.executor != "ray":
            raise ConfigError(
                f"--ray-address is an option of the ray executor, not of {experiment.executor!r}"
            )
        experiment.executor_options["address"] = ray_address
    if data_path:
        experiment.data_path = data_path
    if channels_last:
        experiment.channels_last = True
    if torch_compile:
        experiment.torch_compile = True
    return experiment
