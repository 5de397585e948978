"""Waits made visible: while a pass writes nothing (or Ray Train's workers wait for their
placement group), say every so often what Ray has pending and what is free, instead of a silent hang."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("handdiff.waits")

REPORT_WAITS_AFTER_S = 60.0
"""A pass that writes nothing this long logs Ray's pending demands, and again every as long
(``ray.report_waits_after_s``, set by ``pipelines.job.init_ray``)."""


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
    except Exception:
        return False


def pending_summary() -> str:
    """Ray's pending demands (``pending_demands``) and the cluster's free CPUs/GPUs, in one line."""
    import ray

    try:
        waiting = "; ".join(pending_demands()) or "none"
    except Exception as err:
        waiting = f"unknown ({type(err).__name__}: {err})"
    free = ray.available_resources()
    return (
        f"Ray's pending demands: {waiting}; free: {free.get('CPU', 0):g} CPUs, {free.get('GPU', 0):g} GPUs "
        "(a pool the others starve: lower their actors or num_cpus)"
    )
