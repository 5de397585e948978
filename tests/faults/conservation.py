"""What every fault test checks after the job: each input id in exactly one output row."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from handdiff import storage
from handdiff.data.parts import part_uris, read_parts
from handdiff.data.readers import open_reader
from handdiff.data.work_rows import OUTPUTS
from pipelines import annotate
from pipelines.demo_configs import demo_config
from pipelines.job import TrackingConfig


def hagrid_annotate(workdir: str, output: str, tracking_uri: str, run_name: str, **changes) -> annotate.Config:
    """The demo's annotate settings on the HaGRID sample only (37 entries), in batches and parts
    of 2 images: many parts, so that a fault lands mid-job."""
    cfg = demo_config("annotate", workdir, TrackingConfig(run_name=run_name, tracking_uri=tracking_uri)).model_dump()
    cfg.update(datasets={"hagrid": cfg["datasets"]["hagrid"]}, output=output, index_rows_per_file=2)
    for stage in ("keypoints", "masks", "captions"):
        cfg[stage]["resources"]["batch_size"] = 2
    for key, value in changes.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
    return annotate.Config.model_validate(cfg)


def input_ids(cfg: annotate.Config, name: str = "hagrid") -> list[str]:
    return [entry["image_id"] for entry in open_reader(**cfg.datasets[name].source.model_dump()).entries()]


def output_ids(cfg: annotate.Config, name: str = "hagrid") -> list[str]:
    """Every id in the records, errors and filtered parts, duplicates kept."""
    out = storage.join(cfg.output, name)
    tables = [f"{out}/{table}" for table in OUTPUTS if part_uris(f"{out}/{table}")]
    return [i for table in tables for i in read_parts(table, columns=["image_id"]).column("image_id").to_pylist()]


def assert_each_input_once(cfg: annotate.Config, name: str = "hagrid") -> None:
    ids, expected = output_ids(cfg, name), input_ids(cfg, name)
    assert len(ids) == len(set(ids)), "duplicate rows"
    assert sorted(ids) == sorted(expected), f"missing {set(expected) - set(ids)}, unexpected {set(ids) - set(expected)}"


def parts_written(cfg: annotate.Config, name: str = "hagrid") -> int:
    out = storage.join(cfg.output, name)
    return sum(len(part_uris(f"{out}/{table}")) for table in OUTPUTS)


class InBackground:
    """``fn()`` on a thread; ``result()`` joins it and returns (or re-raises) its outcome."""

    def __init__(self, fn: Callable[[], int]):
        self.outcome: dict = {}
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn) -> None:
        try:
            self.outcome["value"] = fn()
        except BaseException as err:
            self.outcome["error"] = err

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 300) -> None:
        """Until ``check()`` holds, while the job still runs."""
        deadline = time.monotonic() + timeout
        while not check():
            assert self.thread.is_alive(), f"the job ended before {what}: {self.outcome}"
            assert time.monotonic() < deadline, f"no {what} in {timeout:.0f}s"
            time.sleep(0.2)

    def result(self, timeout: float = 600):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the job did not finish"
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["value"]
