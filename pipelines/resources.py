"""What a job asks of the cluster, checked before it starts, and what it waits for while it runs.

Every actor pool (a ``Resources`` section: ``actors`` x ``num_cpus`` / ``num_gpus``), task pool
(a ``TaskResources`` section: one task at a time at least) and Ray Train worker group
(``scaling``: ``workers`` x ``cpus_per_worker``, a GPU each with ``use_gpu``) of a config is a
``Demand``, found by walking the config. The pools of one pass run at once (Ray Data streams
every stage together), so a pass needs their sum; ``check_demands`` stops the job before any
compute when an actor fits no node or a pass needs more than the cluster has (or, with
``ray.autoscale_to``, can grow to), in one line naming the pools, what they need, what the
cluster has and the keys to change. ``WaitReporter`` says, every so often while a pass writes
nothing, what is pending and what is free (Ray's own view), instead of silence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from handdiff.config import ConfigError

log = logging.getLogger("handdiff.resources")


@dataclass(frozen=True)
class Demand:
    key: str
    """The config key of the pool (``masks.resources``)."""
    count: int
    """Actors or workers held at once (a task pool: 1, the least it runs with)."""
    cpus: float
    gpus: float = 0.0

    def describe(self) -> str:
        unit = f"{self.cpus:g} CPU" + (f" + {self.gpus:g} GPU" if self.gpus else "")
        return f"{self.key}: {self.count} x {unit}"


def demands_of(cfg: BaseModel, prefix: str = "") -> Iterator[Demand]:
    """Every pool of ``cfg`` (nested sections included), as ``Demand``."""
    from pipelines.ray_stages import Resources, TaskResources
    from pipelines.training import ScalingSection

    for name, value in cfg:
        key = f"{prefix}{name}"
        if isinstance(value, Resources):
            yield Demand(key, value.actors, value.num_cpus, value.num_gpus)
        elif isinstance(value, TaskResources):
            yield Demand(key, 1, value.num_cpus)
        elif isinstance(value, ScalingSection):
            yield Demand(key, value.workers, value.cpus_per_worker, 1.0 if value.use_gpu else 0.0)
        elif isinstance(value, BaseModel):
            yield from demands_of(value, f"{key}.")


@dataclass(frozen=True)
class Cluster:
    """What the cluster offers: per alive node, its CPUs and GPUs."""

    nodes: tuple[tuple[float, float], ...]

    @property
    def cpus(self) -> float:
        return sum(cpus for cpus, _ in self.nodes)

    @property
    def gpus(self) -> float:
        return sum(gpus for _, gpus in self.nodes)


def current_cluster() -> Cluster:
    """The alive nodes of the connected Ray cluster."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    return Cluster(tuple((float(r.get("CPU", 0)), float(r.get("GPU", 0))) for r in nodes))


def check_demands(passes: Sequence[Sequence[Demand]], cluster: Cluster, autoscale_to: dict[str, float] | None = None) -> None:
    """``ConfigError`` in one line when an actor fits on no node, or a pass's pools need more
    CPUs or GPUs at once than the cluster has (``autoscale_to``: what it can grow to, e.g.
    ``{"CPU": 64, "GPU": 8}``; the per-node check is then left to the autoscaler)."""
    limit_cpus = (autoscale_to or {}).get("CPU", cluster.cpus)
    limit_gpus = (autoscale_to or {}).get("GPU", cluster.gpus)
    has = f"the cluster has {cluster.cpus:g} CPUs, {cluster.gpus:g} GPUs" + (f" (autoscales to {limit_cpus:g}, {limit_gpus:g})" if autoscale_to else "")
    for demands in passes:
        for d in demands:
            if not autoscale_to and d.count and not any(d.cpus <= cpus + 1e-9 and d.gpus <= gpus + 1e-9 for cpus, gpus in cluster.nodes):
                raise ConfigError(f"{d.key}: one actor needs {d.cpus:g} CPUs and {d.gpus:g} GPUs but no node has that ({has}): "
                                  f"lower {d.key}'s num_cpus/num_gpus")  # fmt: skip
        cpus, gpus = sum(d.count * d.cpus for d in demands), sum(d.count * d.gpus for d in demands)
        if cpus > limit_cpus + 1e-9 or gpus > limit_gpus + 1e-9:
            short = "GPUs" if gpus > limit_gpus + 1e-9 else "CPUs"
            largest = max(demands, key=lambda d: d.count * (d.gpus if short == "GPUs" else d.cpus))
            raise ConfigError(f"the pools that run together need {cpus:g} CPUs and {gpus:g} GPUs ({'; '.join(d.describe() for d in demands)}) "
                              f"but {has}: they would wait forever; lower {largest.key}.actors (or its num_cpus/num_gpus), "
                              "or give Ray more (ray start --head --num-cpus N, ray.num_cpus for a local instance)")  # fmt: skip


def fit_demands(cfg: BaseModel, cpus: float) -> bool:
    """Scale every pool's CPUs in ``cfg`` (in place) so that its pools fit in ``cpus`` CPUs at
    once: the demo's pools on whatever instance it is given. True when it had to."""
    from pipelines.ray_stages import Resources, TaskResources
    from pipelines.training import ScalingSection

    need = sum(d.count * d.cpus for d in demands_of(cfg))
    if need <= cpus:
        return False
    factor = cpus / need * 0.99  # under, not at, the limit: float sums
    for section in _sections(cfg):
        if isinstance(section, Resources | TaskResources):
            section.num_cpus = max(0.01, round(section.num_cpus * factor, 3))
        elif isinstance(section, ScalingSection):
            section.cpus_per_worker = max(0.01, round(section.cpus_per_worker * factor, 3))
    return True


def _sections(cfg: BaseModel) -> Iterator[BaseModel]:
    for _, value in cfg:
        if isinstance(value, BaseModel):
            yield value
            yield from _sections(value)


class WaitReporter:
    """While a pass writes nothing for longer than ``after_s`` seconds, log every ``every_s``
    seconds what Ray has pending (actors waiting to be created, placement groups, with what they
    need) and what is free, so a pool that cannot start is not a silent hang. Use as a context
    manager and call ``progress()`` at each written batch. ``while_pending``: for work that shows
    no progress to the driver (Ray Train's ``fit``), report only while Ray has pending demands."""

    def __init__(self, name: str, after_s: float = 60.0, every_s: float = 60.0, while_pending: bool = False):
        self.name, self.after_s, self.every_s, self.while_pending = name, after_s, every_s, while_pending
        self.last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"wait-reporter-{name}", daemon=True)

    def progress(self) -> None:
        self.last = time.monotonic()

    def __enter__(self) -> WaitReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        reported = 0.0
        while not self._stop.wait(min(self.after_s, self.every_s, 5.0)):
            if self.while_pending and not _any_pending():
                self.progress()  # nothing waits: the clock restarts
                continue
            idle = time.monotonic() - self.last
            if idle >= self.after_s and time.monotonic() - reported >= self.every_s:
                reported = time.monotonic()
                what = "waiting on resources" if self.while_pending else "nothing written"
                log.warning("%s: %s for %.0f s; %s", self.name, what, idle, pending_summary())


def pending_demands() -> list[str]:
    """Ray's pending demands as ``ray status`` lists them: "<count> x {resource amount, ...}" per
    resource shape of tasks and actors waiting to be placed, and per pending placement group
    (Ray Train's workers) "placement group of {...}, {...}"."""
    import ray
    from ray.autoscaler.v2.sdk import get_cluster_status

    def shape(bundle: dict) -> str:
        return "{" + ", ".join(f"{k} {v:g}" for k, v in sorted(bundle.items())) + "}"

    demands = get_cluster_status(ray.get_runtime_context().gcs_address).resource_demands
    out = [f"{b.count} x {shape(b.bundle)}" for demand in demands.ray_task_actor_demand for b in demand.bundles_by_count]
    for group in demands.placement_group_demand:
        out.append("placement group of " + ", ".join(f"{b.count} x {shape(b.bundle)}" for b in group.bundles_by_count))
    return out


def _any_pending() -> bool:
    try:
        return bool(pending_demands())
    except Exception:  # noqa: BLE001  (a report, never a failure)
        return False


def pending_summary() -> str:
    """Ray's pending demands (``pending_demands``) and the cluster's free CPUs/GPUs, in one line."""
    import ray

    try:
        waiting = "; ".join(pending_demands()) or "none"
    except Exception as err:  # noqa: BLE001  (a report, never a failure)
        waiting = f"unknown ({type(err).__name__}: {err})"
    free = ray.available_resources()
    return (f"Ray's pending demands: {waiting}; free: {free.get('CPU', 0):g} CPUs, {free.get('GPU', 0):g} GPUs "
            "(a pool the others starve: lower their actors or num_cpus)")  # fmt: skip
