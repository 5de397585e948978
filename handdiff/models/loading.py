"""One loader per model kind, the same code path for the tiny zoo and real checkpoints.

A model location is a local path, an ``s3://`` prefix (copied once into a local
cache, ``$HANDDIFF_CACHE`` or ``~/.cache/handdiff``) or a Hugging Face hub id
(downloaded by the libraries themselves, where the machine may download).
Single-file checkpoints (SAM, Inception) take a path, an ``s3://`` key or
``hf://<repo id>/<file>``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from handdiff import storage


def cache_dir() -> Path:
    return Path(os.environ.get("HANDDIFF_CACHE", Path.home() / ".cache" / "handdiff"))


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(location: str) -> bool:
    """``owner/name`` that is not a local path: a Hugging Face hub id (a folder of that name wins)."""
    return bool(_HUB_ID.match(location)) and not os.path.exists(location)


def resolve(location: str) -> str:
    """A local path for a local or ``s3://`` location; a hub id is returned unchanged.

    An S3 prefix (or key) is copied to the cache once; a later call re-copies only
    files whose size differs, under a lock so that concurrent actors on a node
    share one copy.
    """
    if is_hub_id(location):
        return location  # from_pretrained resolves it
    if storage.is_local(location):
        path = storage.local_path(location)
        if not os.path.exists(path):
            raise FileNotFoundError(f"model location {location} does not exist")
        return path
    if storage.is_s3(location):
        return _sync_s3(location)
    if location.startswith("hf://"):
        from huggingface_hub import hf_hub_download

        owner, name, filename = location[len("hf://") :].split("/", 2)
        return hf_hub_download(f"{owner}/{name}", filename)
    return location  # a hub id: from_pretrained resolves it


def _sync_s3(uri: str) -> str:
    fs, path = storage.filesystem(uri)
    path = path.rstrip("/")
    local = cache_dir() / "s3" / path
    local.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(local) + ".lock"):
        if fs.isfile(path):
            if not local.exists() or local.stat().st_size != fs.size(path):
                _atomic_get(fs, path, local)
            return str(local)
        files = {f: info["size"] for f, info in fs.find(path, detail=True).items()}
        if not files:
            raise FileNotFoundError(f"model location {uri} holds no files")
        for remote, size in files.items():
            target = local / os.path.relpath(remote, path)
            if not target.exists() or target.stat().st_size != size:
                target.parent.mkdir(parents=True, exist_ok=True)
                _atomic_get(fs, remote, target)
    return str(local)


def _atomic_get(fs, remote: str, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        fs.get_file(remote, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_sd_pipeline(location: str, **kwargs):
    """A ``StableDiffusionPipeline`` (SD 1.5 layout: unet, vae, text_encoder, tokenizer, scheduler)."""
    from diffusers import StableDiffusionPipeline

    kwargs.setdefault("safety_checker", None)
    kwargs.setdefault("requires_safety_checker", False)
    return StableDiffusionPipeline.from_pretrained(resolve(location), **kwargs)


def load_controlnet(location: str, **kwargs):
    """A ``ControlNetModel`` (e.g. the OpenPose ControlNet for SD 1.5)."""
    from diffusers import ControlNetModel

    return ControlNetModel.from_pretrained(resolve(location), **kwargs)


def load_t2i_adapter(location: str, **kwargs):
    """A ``T2IAdapter`` (e.g. ``TencentARC/t2iadapter_openpose_sd14v1``)."""
    from diffusers import T2IAdapter

    return T2IAdapter.from_pretrained(resolve(location), **kwargs)


def load_sam(location: str, arch: str = "vit_h"):
    """A segment-anything ``Sam`` of architecture ``arch`` from a checkpoint file."""
    from handdiff.models.sam import build_sam

    return build_sam(arch, resolve(location))


def load_captioner(location: str, **kwargs):
    """``(LlavaForConditionalGeneration, processor)``, e.g. ``llava-hf/llava-1.5-7b-hf``."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    path = resolve(location)
    return LlavaForConditionalGeneration.from_pretrained(path, **kwargs), AutoProcessor.from_pretrained(path)


def load_clip(location: str, **kwargs):
    """``(CLIPModel, CLIPProcessor)`` for CLIP scores, e.g. ``openai/clip-vit-large-patch14``."""
    from transformers import CLIPModel, CLIPProcessor

    path = resolve(location)
    return CLIPModel.from_pretrained(path, **kwargs), CLIPProcessor.from_pretrained(path)


def inception_weights(location: str) -> str:
    """A local path to torch-fidelity Inception-v3 weights, for ``feature_extractor_weights_path``."""
    path = resolve(location)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Inception weights {location} is not a file")
    return path


def copy_tree(local_dir: str, uri: str) -> None:
    """Upload a local model folder to ``uri`` (a local path or ``s3://`` prefix)."""
    if storage.is_local(uri):
        shutil.copytree(local_dir, storage.local_path(uri), dirs_exist_ok=True)
        return
    fs, path = storage.filesystem(uri)
    for root, _, files in os.walk(local_dir):
        for name in files:
            src = os.path.join(root, name)
            fs.put_file(src, f"{path.rstrip('/')}/{os.path.relpath(src, local_dir)}")
