"""What a job asks of the cluster, checked before it starts (waits while it runs: ``pipelines.waits``).

Every actor pool (a ``Resources`` section: ``actors`` x ``num_cpus`` / ``num_gpus``), task pool
(a ``TaskResources`` section: one task at a time at least) and Ray Train worker group
(``scaling``: ``workers`` x ``cpus_per_worker``, a GPU each with ``use_gpu``) of a config is a
``Demand``, found by walking the config. The pools of one pass run at once (Ray Data streams
every stage together), so a pass needs their sum; ``check_demands`` stops the job before any
compute when an actor fits no node or a pass needs more than the cluster has (or, with
``ray.autoscale_to``, can grow to), in one line naming the pools, what they need, what the
cluster has and the keys to change.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from handdiff.config import ConfigError


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
    from pipelines.ray_stages import Resources, ScalingSection, TaskResources

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
    has = f"the cluster has {cluster.cpus:g} CPUs, {cluster.gpus:g} GPUs" + (
        f" (autoscales to {limit_cpus:g}, {limit_gpus:g})" if autoscale_to else ""
    )
    for demands in passes:
        for d in demands:
            if not autoscale_to and d.count and not any(d.cpus <= cpus + 1e-9 and d.gpus <= gpus + 1e-9 for cpus, gpus in cluster.nodes):
                raise ConfigError(
                    f"{d.key}: one actor needs {d.cpus:g} CPUs and {d.gpus:g} GPUs but no node has that ({has}): "
                    f"lower {d.key}'s num_cpus/num_gpus"
                )
        cpus, gpus = sum(d.count * d.cpus for d in demands), sum(d.count * d.gpus for d in demands)
        if cpus > limit_cpus + 1e-9 or gpus > limit_gpus + 1e-9:
            short = "GPUs" if gpus > limit_gpus + 1e-9 else "CPUs"
            largest = max(demands, key=lambda d: d.count * (d.gpus if short == "GPUs" else d.cpus))
            raise ConfigError(
                f"the pools that run together need {cpus:g} CPUs and {gpus:g} GPUs ({'; '.join(d.describe() for d in demands)}) "
                f"but {has}: they would wait forever; lower {largest.key}.actors (or its num_cpus/num_gpus), "
                "or give Ray more (ray start --head --num-cpus N, ray.num_cpus for a local instance)"
            )


def fit_demands(cfg: BaseModel, cpus: float) -> bool:
    """Scale every pool's CPUs in ``cfg`` (in place) so that its pools fit in ``cpus`` CPUs at
    once: the demo's pools on whatever instance it is given. True when it had to."""
    from pipelines.ray_stages import Resources, ScalingSection, TaskResources

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
