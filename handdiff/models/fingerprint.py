"""What a model *is*, not where it is: a short hash of its contents, for rerun keys and provenance.

A training job continued in place overwrites ``<storage_path>/<run_name>/final_model``, so a key
built from the location would find the old images and scores and reuse them without a word.

- a local file or folder: every file's relative path, size and SHA-256 (each file read once per
  process, again only when its size or modification time changes);
- an ``s3://`` prefix or key: every object's key, size and ETag (hashing would mean downloading;
  S3 changes the ETag whenever the object's bytes change);
- a hub id: the repository's current commit (``huggingface_hub``; offline, the id itself, which
  cannot see a new revision: a warning says so).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from handdiff import storage
from handdiff.models.loading import is_hub_id

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_HASHED: dict[tuple, str] = {}
"""(path, size, mtime) -> SHA-256 of files this process has read: a model is read once per process
unless a file of it changes (a file rewritten in place gets a new mtime)."""


def _local(path: Path) -> list[tuple[str, int, str]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    entries = []
    for f in files:
        stat = f.stat()
        key = (str(f.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _HASHED:
            _HASHED[key] = _sha256(f)
        entries.append((os.path.relpath(f, path) if f != path else f.name, stat.st_size, _HASHED[key]))
    return entries


def _s3(uri: str) -> list[tuple[str, int, str]]:
    fs, path = storage.filesystem(uri)
    path = path.rstrip("/")
    found = {path: fs.info(path)} if fs.isfile(path) else fs.find(path, detail=True)
    return sorted(
        (os.path.relpath(key, path) if key != path else key.rsplit("/", 1)[-1], int(info["size"]), str(info.get("ETag", "")).strip('"'))
        for key, info in found.items()
    )


def _hub(repo_id: str) -> list[tuple[str, int, str]]:
    try:
        from huggingface_hub import model_info

        return [(repo_id, 0, model_info(repo_id).sha or "")]
    except Exception as err:  # offline, or not a hub id: the id alone
        log.warning("cannot read the hub revision of %s (%s): its rerun key is its id, blind to a new revision", repo_id, err)
        return [(repo_id, 0, "")]


def fingerprint(location: str) -> str:
    """A 16-hex-digit hash of what ``location`` holds (see the module docstring)."""
    if is_hub_id(location):
        entries = _hub(location)
    elif storage.is_local(location):
        path = Path(storage.local_path(location))
        if not path.exists():
            raise FileNotFoundError(f"model location {location} does not exist")
        entries = _local(path)
    elif storage.is_s3(location):
        entries = _s3(location)
    else:
        entries = _hub(location.removeprefix("hf://"))
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


def keep_fingerprints(output: str, locations: list[str], done: set[str]) -> dict[str, str]:
    """The fingerprints of the models at ``locations``, kept as ``<output>/models.json``. An output
    already holding rows (``done``) made with other contents of one of them (a model retrained or
    replaced in place since) raises ``ValueError`` naming it: resuming would mix two models' rows."""
    models = {location: fingerprint(location) for location in locations}
    uri = storage.join(output, "models.json")
    if done and storage.exists(uri):
        before = json.loads(storage.read_text(uri))
        # by contents, not by location: the same model moved elsewhere resumes, another model refuses
        changed = [location for location, now in models.items() if now not in before.values()]
        if changed or len(models) != len(before):
            raise ValueError(
                f"{output} holds {len(done)} rows made with other contents of {', '.join(changed or models)} (replaced "
                "in place since, or another model?): resuming would mix two models' rows; write to a new output, or delete this one"
            )
    storage.write_text(uri, json.dumps(models, indent=1, sort_keys=True))
    return models
