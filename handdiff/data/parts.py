"""Datasets written as many Parquet part files, safely under crashes and retries.

A part is written whole or not at all (a temporary name renamed into place on
local disks; S3 creates an object atomically), and its name is a hash of the
image ids it holds: a retried batch rewrites the same part instead of adding a
second copy. A job that restarts reads the ids already written and skips them,
so every input ends up in exactly one row.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from handdiff import storage

PART_PREFIX = "part-"


def part_name(image_ids: list[str]) -> str:
    digest = hashlib.sha1("\n".join(sorted(image_ids)).encode()).hexdigest()[:20]
    return f"{PART_PREFIX}{digest}.parquet"


def write_part(table: pa.Table, directory: str) -> str | None:
    """Write ``table`` (with an ``image_id`` column) as one part under ``directory``; None if empty."""
    if table.num_rows == 0:
        return None
    uri = storage.join(directory, part_name(table.column("image_id").to_pylist()))
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    if storage.is_local(uri):
        path = storage.local_path(uri)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{os.path.dirname(path)}/.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    else:
        storage.write_bytes(uri, buf.getvalue())
    return uri


def part_uris(directory: str) -> list[str]:
    return [storage.join(directory, name) for name, is_dir in storage.listdir(directory) if not is_dir and name.startswith(PART_PREFIX)]


def read_part(uri: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(io.BytesIO(storage.read_bytes(uri)), columns=columns)


def read_parts(directory: str, columns: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
    """Every part of ``directory`` as one table (empty, with ``schema``, when there is none)."""
    tables = [read_part(uri, columns) for uri in part_uris(directory)]
    if tables:
        return pa.concat_tables(tables, promote_options="default")  # parts written before a nullable column was added: nulls
    if schema is None:
        raise FileNotFoundError(f"no parts under {directory}")
    empty = schema.empty_table()
    return empty.select(columns) if columns else empty


def parts_by_id(directory: str) -> dict[str, str]:
    """image id -> the part under ``directory`` holding it (reads the id column only)."""
    where = {}
    for uri in part_uris(directory):
        where.update(dict.fromkeys(read_part(uri, ["image_id"]).column("image_id").to_pylist(), uri))
    return where


def written_ids(directory: str) -> set[str]:
    """The image ids already written under ``directory``."""
    ids: set[str] = set()
    for uri in part_uris(directory):
        ids.update(read_part(uri, ["image_id"]).column("image_id").to_pylist())
    return ids


INDEX_SCHEMA = pa.schema([pa.field("image_id", pa.string(), nullable=False), pa.field("entry", pa.string(), nullable=False)])
"""A job's work list: one reader entry (JSON) per image."""


def write_index(
    entries: Iterable[Mapping[str, Any]], directory: str, skip: set[str], rows_per_file: int, key: str = "image_id"
) -> tuple[int, list[str]]:
    """Stream reader ``entries`` whose ``key`` is not in ``skip`` into ``INDEX_SCHEMA`` files under
    ``directory`` (replacing any earlier index; the files' ``image_id`` column holds the key, unique
    per entry). Returns (entries seen, files written); the driver's memory stays flat however
    large the dataset is."""
    fs, root = storage.filesystem(directory)
    if fs.exists(root):
        fs.rm(root, recursive=True)
    fs.makedirs(root, exist_ok=True)
    seen, files, chunk = 0, [], []

    def flush() -> None:
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(chunk, schema=INDEX_SCHEMA), buf)
        files.append(storage.join(directory, f"index-{len(files):06d}.parquet"))
        storage.write_bytes(files[-1], buf.getvalue())
        chunk.clear()

    for entry in entries:
        seen += 1
        if entry[key] not in skip:
            chunk.append({"image_id": entry[key], "entry": json.dumps(entry)})
            if len(chunk) >= rows_per_file:
                flush()
    if chunk:
        flush()
    return seen, files


def read_files(batch: pa.Table, schema: pa.Schema | None = None) -> pa.Table:
    """Parquet files (a ``file`` column of URIs) -> their rows, as ``schema`` if given."""
    tables = [read_part(uri) for uri in batch.column("file").to_pylist()]
    if not tables:
        return schema.empty_table() if schema is not None else pa.table({})
    table = pa.concat_tables(tables)
    return table.cast(schema) if schema is not None else table


def read_index_files(batch: pa.Table) -> pa.Table:
    """Index files -> their entries (``INDEX_SCHEMA``)."""
    return read_files(batch, INDEX_SCHEMA)


def index_rows(files: list[str]) -> int:
    return sum(pq.read_metadata(io.BytesIO(storage.read_bytes(f))).num_rows for f in files)


def top_error_reasons(output: str, n: int = 3) -> list[tuple[str, int]]:
    """The ``n`` commonest reasons of the errors table under ``output``, with counts; paths and
    URIs inside a reason are replaced by ``<path>`` so that one cause counts once."""
    if not part_uris(f"{output}/errors"):
        return []
    reasons = read_parts(f"{output}/errors", ["reason"]).column("reason").to_pylist()
    return Counter(_PATH.sub("<path>", r or "") for r in reasons).most_common(n)


_PATH = re.compile(r"(?:[a-z][a-z0-9+.-]*://|/)[^\s,;:]+")


def check_conservation(output: str, tables: Iterable[str], rows_in: int) -> dict[str, int]:
    """Rows per table under ``output``; raises if an image id repeats or rows in != the sum."""
    counts: dict[str, int] = {}
    seen: Counter[str] = Counter()
    id_only = pa.schema([pa.field("image_id", pa.string())])
    for table in tables:
        ids = read_parts(f"{output}/{table}", ["image_id"], id_only).column("image_id").to_pylist()
        counts[table] = len(ids)
        seen.update(ids)
    repeated = [i for i, n in seen.items() if n > 1]
    if repeated:
        raise RuntimeError(f"{output}: {len(repeated)} image ids written more than once, e.g. {sorted(repeated)[:3]}")
    if sum(counts.values()) != rows_in:
        raise RuntimeError(f"{output}: {rows_in} rows in but {counts} out")
    return counts
