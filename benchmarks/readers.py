"""Dataset readers: images/s (read the record + decode the image) from the S3 server
against local disk (the baseline), and the tiny zoo's build cost against a cache hit."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.report import Figure
from devtools.services import patched_environ, start_s3
from handdiff.assets.sample_data import build_sample_data, sample_sources
from handdiff.assets.tiny_zoo import build_tiny_zoo
from handdiff.data.readers import open_reader, scan_dataset

REPEATS = 3


def images_per_second(options: dict) -> float:
    best = 0.0
    for _ in range(REPEATS):
        start = time.perf_counter()
        records, errors = scan_dataset(open_reader(**options))
        best = max(best, (len(records) + len(errors)) / (time.perf_counter() - start))
    return best


def run() -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "sample")
        build_sample_data(local)
        s3 = start_s3(Path(tmp))
        try:
            with patched_environ(s3.env):
                remote = f"s3://{s3.bucket}/sample"
                build_sample_data(remote)
                for name in sample_sources(local):
                    base = images_per_second(sample_sources(local)[name])
                    figures.append(Figure("readers", f"{name} local", base, "images/s"))
                    figures.append(
                        Figure("readers", f"{name} s3", images_per_second(sample_sources(remote)[name]), "images/s", base, "of local")
                    )
        finally:
            s3.service.stop()
        start = time.perf_counter()
        build_tiny_zoo(os.path.join(tmp, "zoo"))
        cold = time.perf_counter() - start
        start = time.perf_counter()
        build_tiny_zoo(os.path.join(tmp, "zoo"))
        warm = time.perf_counter() - start
        figures.append(Figure("zoo", "cached check", warm, "s"))
        figures.append(Figure("zoo", "cold build", cold, "s", warm, "of cached"))
    return figures
