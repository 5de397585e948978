"""How the Ray Data jobs run library stages: blocks keep the size of the job's files through the
stateless stages, and a streaming run reports its start-up and steady rate."""

from __future__ import annotations

import logging
import time

import pyarrow as pa
import pytest

from handdiff.data.parts import write_index
from handdiff.data.work_rows import COUNTS_SCHEMA
from pipelines.ray_stages import TaskResources, Written, index_dataset, map_tasks, run_to_parts

pytestmark = pytest.mark.services


def pass_through(batch: pa.Table) -> pa.Table:
    return batch


def test_stateless_stages_keep_one_block_per_index_file(ray_session, tmp_path):
    """Bundling index files into bigger blocks (as a row batch size on a task stage did) would
    make every later stage wait for many files at once: the pipeline stops overlapping."""
    entries = [{"image_id": f"x/{i}"} for i in range(23)]
    total, files = write_index(entries, str(tmp_path / "_index"), set(), rows_per_file=4)
    assert total == 23 and len(files) == 6
    tasks = TaskResources(num_cpus=0.5, concurrency=2)
    ds = map_tasks(map_tasks(index_dataset(files, tasks), pass_through, tasks), pass_through, tasks)
    blocks = sorted(batch.num_rows for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None))
    assert blocks == [3, 4, 4, 4, 4, 4]


def slow_counts(batch: pa.Table) -> pa.Table:
    """One part's counts per input row: 2 records and 1 error; the first part is slow to come."""
    time.sleep(1.0 if batch.column("i")[0].as_py() == 0 else 0.2)
    return pa.table({"ok": [2], "error": [1], "filtered": [0]}, schema=COUNTS_SCHEMA)


def test_run_to_parts_reports_start_up_apart_from_the_steady_rate(ray_session):
    import ray

    ds = ray.data.from_items([{"i": i} for i in range(5)], override_num_blocks=5)
    ds = ds.map_batches(slow_counts, batch_format="pyarrow", batch_size=None, compute=ray.data.TaskPoolStrategy(size=1))
    written = run_to_parts(ds, "test", logging.getLogger("test"))
    assert written.counts == {"ok": 10, "error": 5, "filtered": 0} and written.rows == 15
    assert written.first_rows == 3
    assert 1.0 <= written.first_output_s < written.seconds
    # the rate counts the 4 later parts of 3 rows over the time after the first: the slow first is not in it
    assert 3 * 4 / (written.seconds - written.first_output_s) == pytest.approx(written.steady_rows_per_second)


def test_a_run_with_a_single_output_has_no_steady_rate():
    assert Written(counts={"ok": 3}, seconds=2.0, first_output_s=2.0, first_rows=3).steady_rows_per_second == 0.0
    assert Written(counts={}, seconds=0.0).steady_rows_per_second == 0.0
