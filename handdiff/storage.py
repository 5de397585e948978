"""Every path in handdiff is a URI: a local path, ``file://...`` or ``s3://bucket/key``.

This module is the one place that turns a URI into a filesystem, for fsspec
(library code) and for pyarrow (Ray Data reads and writes). S3 settings come from
the standard environment variables only, so credentials never pass through
configs, logs or MLflow params:

- ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``: a non-AWS endpoint (MinIO, SeaweedFS, ...)
- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``
- ``AWS_REGION`` or ``AWS_DEFAULT_REGION``

Requests to S3 ride out a restarting or briefly unreachable server: both clients use
the AWS SDK's "standard" retry mode with ``S3_MAX_ATTEMPTS`` attempts (exponential
backoff with jitter, up to 20 s apart: about a minute of outage in all) for
connection errors, timeouts, throttling and 5xx answers.
"""

from __future__ import annotations

import os
import posixpath
from urllib.parse import urlparse

import fsspec
import pyarrow.fs as pafs

S3_MAX_ATTEMPTS = 10


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    """The absolute local path of a local URI (``file://`` stripped)."""
    if not is_local(uri):
        raise ValueError(f"{uri}: not a local path")
    return os.path.abspath(uri[len("file://") :] if uri.startswith("file://") else uri)


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a URI with ``/`` (also for local paths on POSIX)."""
    return posixpath.join(uri, *parts)


def s3_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _s3_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def _s3fs_options() -> dict:
    client_kwargs = {}
    if endpoint := s3_endpoint():
        client_kwargs["endpoint_url"] = endpoint
    if region := _s3_region():
        client_kwargs["region_name"] = region
    # s3fs reads keys and tokens from the environment itself (botocore's chain).
    # No listings cache: parts are written by many processes, and a listing this process cached
    # earlier (say, before the job's workers wrote) would hide their parts from its conservation check.
    return {
        "client_kwargs": client_kwargs,
        "use_listings_cache": False,
        "config_kwargs": {"retries": {"mode": "standard", "max_attempts": S3_MAX_ATTEMPTS}, "connect_timeout": 10},
    }


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """An fsspec filesystem for ``uri`` and the path inside it.

    >>> fs, path = filesystem("/tmp/data")
    >>> fs.protocol[0], path
    ('file', '/tmp/data')
    """
    if is_s3(uri):
        fs = fsspec.filesystem("s3", **_s3fs_options())
        return fs, fs._strip_protocol(uri)
    if is_local(uri):
        return fsspec.filesystem("file"), local_path(uri)
    return fsspec.core.url_to_fs(uri)


def arrow_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for ``uri`` and the path inside it (for Ray Data and pyarrow.dataset)."""
    if is_s3(uri):
        kwargs = {}
        if endpoint := s3_endpoint():
            parsed = urlparse(endpoint)
            kwargs["endpoint_override"] = parsed.netloc or parsed.path
            kwargs["scheme"] = parsed.scheme or "https"
        if region := _s3_region():
            kwargs["region"] = region
        # Keys come from pyarrow's own AWS credential chain (the same environment variables).
        fs = pafs.S3FileSystem(**kwargs, retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=S3_MAX_ATTEMPTS))
        parsed = urlparse(uri)
        return fs, f"{parsed.netloc}{parsed.path}".rstrip("/")
    if is_local(uri):
        return pafs.LocalFileSystem(), local_path(uri)
    fs, path = filesystem(uri)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    return fs.cat_file(path)


def write_bytes(uri: str, data: bytes) -> None:
    fs, path = filesystem(uri)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    fs.pipe_file(path, data)


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path, exist_ok=True)


def listdir(uri: str) -> list[tuple[str, bool]]:
    """``(name, is_dir)`` of the entries directly under ``uri``, sorted; [] if it does not exist."""
    fs, path = filesystem(uri)
    try:
        infos = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    out = []
    for info in infos:
        name = posixpath.basename(info["name"].rstrip("/"))
        if name and info["name"].rstrip("/") != path.rstrip("/"):
            out.append((name, info["type"] == "directory"))
    return sorted(out)


def absolute(uri: str) -> str:
    """A local path made absolute (workers may run in another directory); other URIs unchanged."""
    return local_path(uri) if is_local(uri) else uri
