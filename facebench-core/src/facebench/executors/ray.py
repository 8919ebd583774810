"""The ``ray`` executor: Ray Data ``map_batches`` over an actor pool, one model per actor.

The job's batches (:meth:`~facebench.executors.EmbeddingJob.batches`: content hashes and one
file path each, the same batches the local executor makes) become the rows of a Ray Dataset.
A pool of actors (``concurrency=num_actors``, ``num_gpus`` each when the cluster has GPUs)
each receive the model unbuilt (:meth:`~facebench.model.BaseModel.unbuilt_copy`, pickled once
per actor) and build it once; per batch an actor decodes the images (the job's data path),
runs ONE forward pass and writes each layer's rows straight into the store as an atomic chunk.
The driver only counts finished batches and, at the end, reads the chunks back.

- The store folder must be one every actor can write and the driver can read: on one machine
  any cache folder works; on a cluster put ``cache_dir`` on a shared filesystem. Rows the
  driver cannot see afterwards fail the model with an error saying so.
- An interrupted run leaves whole chunks: the next run embeds only what is missing. A local Ray
  that the run started leaves no process behind, even when the run is killed with SIGKILL
  (:mod:`facebench.executors.ray_reaper`).
- An ``address`` where nothing answers fails within ``CONNECT_TIMEOUT`` seconds with a
  :class:`~facebench.errors.ConfigError`; a ``ray://`` address needs ``ray[client]``, which the
  ``[ray]`` extra installs.
- A failing actor (an image that cannot be decoded, an exception in the model, a worker that
  died) fails the model with an :class:`~facebench.errors.ExecutorError` (or the original
  :class:`~facebench.errors.DataError`) carrying the first line of the cause. Actors are not
  restarted and tasks not retried: the failure would repeat.

Ray is optional: ``pip install "facebench-core[ray]"``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from facebench.errors import ConfigError, ExecutorError, FacebenchError
from facebench.executors import EmbeddingJob, Executor

if TYPE_CHECKING:
    from facebench.model import BaseModel

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds to wait for a Ray address to answer
INSTALL_HINT = 'the ray executor needs Ray Data; install it with: pip install "facebench-core[ray]"'


class RayExecutor(Executor):
    """Embed on a Ray cluster: an existing one at ``address`` (``"auto"``: the one ``ray start``
    started on this machine; ``"ray://HOST:10001"``: a remote head), else a local one.

    ``num_actors``: how many models run at once (default: one per GPU of the cluster, else one
    per ``num_cpus_per_actor`` CPUs; never more than there are batches). ``num_gpus_per_actor``:
    default 1 when the cluster has GPUs, else 0 (actors run on the CPU). ``num_cpus_per_actor``:
    CPUs reserved for each actor, which reads and decodes its batches and runs torch on that
    many threads (give GPU actors several when images take the CPU path). An ``address`` where
    nothing answers is a :class:`ConfigError` within ``CONNECT_TIMEOUT`` seconds, at construction.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_actors: int | None = None,
        num_gpus_per_actor: float | None = None,
        num_cpus_per_actor: float = 1.0,
    ) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ConfigError(INSTALL_HINT)
        if num_actors is not None and (isinstance(num_actors, bool) or int(num_actors) < 1):
            raise ConfigError(f"ray executor: num_actors must be a positive integer, not {num_actors!r}")
        if num_gpus_per_actor is not None and float(num_gpus_per_actor) < 0:
            raise ConfigError(f"ray executor: num_gpus_per_actor must be >= 0, not {num_gpus_per_actor!r}")
        if float(num_cpus_per_actor) <= 0:
            raise ConfigError(f"ray executor: num_cpus_per_actor must be > 0, not {num_cpus_per_actor!r}")
        check_address(address)  # nothing answering fails now, in seconds, not in ray.init's retries
        self.address = address
        self.num_actors = None if num_actors is None else int(num_actors)
        self.num_gpus_per_actor = None if num_gpus_per_actor is None else float(num_gpus_per_actor)
        self.num_cpus_per_actor = float(num_cpus_per_actor)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "num_actors": self.num_actors,
            "num_gpus_per_actor": self.num_gpus_per_actor,
            "num_cpus_per_actor": self.num_cpus_per_actor,
        }

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_actors={self.num_actors!r})"

    # ------------------------------------------------------------------ running
    def embed(self, job: EmbeddingJob) -> None:
        import ray
        from tqdm.auto import tqdm

        self._connect(ray)
        # one row per batch: every executor feeds the network the same batches
        batches = [{"keys": list(keys), "paths": list(paths)} for keys, paths in job.batches()]
        gpus_per_actor, actors = self._pool(ray, len(batches))
        actor_device = "cuda" if gpus_per_actor > 0 else "cpu"
        if job.data_path == "device" and actor_device != job.model.device.type:
            # the device path's identity names the decoding device: actors must decode on it
            raise ConfigError(
                f"model {job.model.name!r}: the device data path was chosen for {job.model.device.type}, "
                f"but the Ray actors run on {actor_device}; use data_path 'cpu' or num_gpus_per_actor"
            )
        with warnings.catch_warnings():  # max_restarts=0 is Ray's own way to not restart actors
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            dataset = ray.data.from_items(batches, override_num_blocks=len(batches)).map_batches(
                EmbedActor,
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_gpus=gpus_per_actor,
                num_cpus=self.num_cpus_per_actor,
                fn_constructor_kwargs={
                    "model": job.model.unbuilt_copy(device=actor_device),
                    "store_root": str(job.store.root),
                    "dtype": job.store.dtype,
                    "identity": job.identity,
                    "reductions": {layer: job.model.reduction_for(layer) for layer in job.tables},
                    "data_path": job.data_path,
                    "channels_last": job.channels_last,
                    "torch_compile": job.torch_compile,
                    "threads": max(1, int(self.num_cpus_per_actor)),
                },
                max_restarts=0,
                max_task_retries=0,
            )
        log.info(
            "model %s: %d batch(es) on %d Ray actor(s), %g GPU(s) each",
            job.model.name,
            len(batches),
            actors,
            gpus_per_actor,
        )
        with tqdm(
            total=job.total,
            initial=job.total - len(job.keys),
            unit="img",
            desc=f"{job.model.name} (ray)",
            disable=not job.progress,
        ) as bar:
            try:
                for done in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    bar.update(int(np.sum(done["images"])))
                    for error in done["error"]:
                        if error:
                            raise _actor_error(job.model, str(error))
                    for counts in done["nonfinite"]:
                        for layer, count in json.loads(str(counts)).items():
                            job.nonfinite[layer] = job.nonfinite.get(layer, 0) + int(count)
            except FacebenchError:
                raise
            except Exception as exc:  # a dead actor, or Ray itself
                raise ExecutorError(
                    f"model {job.model.name!r} failed on the Ray executor: {_first_line(_root_cause(exc))}"
                ) from None
        self._check_written(job)

    def _connect(self, ray: Any) -> None:
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"ray executor: cannot connect to the Ray cluster at {self.address!r} "
                    f"({_first_line(exc)}); start one with `ray start --head`, or leave --ray-address "
                    f"out to start a local one"
                ) from None
            if self.address is None:  # a local Ray of this run's own: none of it may outlive the run
                from facebench.executors.ray_reaper import start_reaper

                start_reaper()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # facebench shows its own
        context.print_on_execution_start = False

    def _pool(self, ray: Any, batches: int) -> tuple[float, int]:
        """GPUs per actor and the number of actors."""
        resources = ray.cluster_resources()
        gpus, cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
        per_actor = self.num_gpus_per_actor if self.num_gpus_per_actor is not None else (1.0 if gpus else 0.0)
        if per_actor > gpus:
            raise ConfigError(
                f"ray executor: num_gpus_per_actor={per_actor:g}, but the Ray cluster has {gpus:g} GPU(s)"
            )
        if self.num_actors is not None:
            actors = self.num_actors
        elif per_actor:
            actors = int(gpus // per_actor)
        else:
            actors = int(cpus // self.num_cpus_per_actor)
        return per_actor, max(1, min(actors, batches))

    @staticmethod
    def _check_written(job: EmbeddingJob) -> None:
        """Every key must now be in every table (else the actors wrote somewhere else)."""
        for layer, table in job.tables.items():
            if layer in job.nonfinite:
                continue  # its rows were left out on purpose: the layer fails, the others stand
            table.refresh()
            missing = table.missing(job.keys)
            if missing:
                raise ExecutorError(
                    f"model {job.model.name!r}: the Ray actors finished but {len(missing)} embedding(s) "
                    f"are not in {table.folder}; on a cluster, cache_dir must be a folder every node "
                    f"shares (the actors write their chunks there)"
                )


class EmbedActor:
    """One Ray actor: builds the model once, then embeds and stores batch after batch."""

    def __init__(
        self,
        model: BaseModel,
        store_root: str,
        dtype: str,
        identity: str,
        reductions: dict[str, str],
        data_path: str,
        channels_last: bool,
        torch_compile: bool,
        threads: int,
    ) -> None:
        import torch

        from facebench.datapath import DataPath
        from facebench.store import EmbeddingStore

        torch.set_num_threads(threads)
        self.threads = threads
        self.model = model
        self.store = EmbeddingStore(store_root, dtype=dtype)
        self.tables = {
            layer: self.store.table(identity, layer, reduction) for layer, reduction in reductions.items()
        }
        self.data = DataPath(data_path, model, channels_last, torch_compile)
        _ = model.model  # build once, now, so that a model that cannot be built fails the pool

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed and store each batch of ``batch``; a failure comes back as an ``error`` row
        (its class and message reach the driver intact, unlike an exception through Ray)."""
        from facebench.engine import batch_rows, write_rows

        counts, errors, nonfinite = [], [], []
        for keys, paths in zip(batch["keys"], batch["paths"], strict=True):
            keys, paths = [str(key) for key in keys], [str(path) for path in paths]
            bad: dict[str, int] = {}
            try:
                for table, missing, rows in batch_rows(
                    self.model, self.data.load(paths, self.threads), keys, self.tables, bad
                ):
                    write_rows(table, missing, rows)
            except Exception as exc:
                counts.append(0)
                separator = "|" if isinstance(exc, FacebenchError) else ": "
                errors.append(f"{type(exc).__name__}{separator}{exc}")
                nonfinite.append("{}")
                continue
            counts.append(len(keys))
            errors.append("")
            nonfinite.append(json.dumps(bad))
        return {
            "images": np.asarray(counts, dtype=np.int64),
            "error": np.asarray(errors, dtype=object),
            "nonfinite": np.asarray(nonfinite, dtype=object),
        }


def check_address(address: str | None, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail within ``timeout`` seconds, with a :class:`ConfigError`, when nothing answers at a
    ``HOST:PORT`` or ``ray://HOST:PORT`` address (``ray.init`` would retry for minutes), or when a
    ``ray://`` address lacks Ray's client (``ray[client]``). None and ``"auto"`` are left to Ray."""
    if address is None or address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    if client and importlib.util.find_spec("grpc") is None:
        raise ConfigError(
            f"ray executor: the address {address!r} needs Ray's client (ray[client]); install it with: "
            f'pip install "facebench-core[ray]"'
        )
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"ray executor: address {address!r} is not HOST:PORT, ray://HOST:PORT or auto; "
            f"e.g. --ray-address 192.168.1.10:6379 or ray://192.168.1.10:10001"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"ray executor: nothing answers at {address!r} ({exc.strerror or type(exc).__name__}, waited at "
            f"most {timeout:g} s); start the cluster there (`ray start --head`) or check --ray-address"
        ) from None


def _actor_error(model: BaseModel, error: str) -> FacebenchError:
    """The error an actor reported: a DataError/ConfigError/... keeps its class and message
    (``"Class|message"``); anything else becomes an :class:`ExecutorError` (``"Class: message"``)."""
    from facebench import errors

    name, separator, message = error.partition("|")
    error_class = getattr(errors, name, None) if separator else None
    if not (isinstance(error_class, type) and issubclass(error_class, FacebenchError)):
        error_class, message = ExecutorError, error
    return error_class(f"model {model.name!r} failed on the Ray executor: {message}")


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of Ray's wrappers (RayTaskError, UserCodeException, ...)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


__all__ = ["INSTALL_HINT", "EmbedActor", "RayExecutor", "check_address"]
