"""What a training set was made with, kept beside its parts as ``<set>/settings.json``.

The set jobs write the settings their rows depend on (``build-hand-crops``: ``size``,
``margin``, ``min_hand_points``; ``build-outpaint-set``: ``size``, ``margin``, ``fill``). The
training jobs read them and save them in the models they export, so that inference makes its
crops, conditions and canvases the way the training rows were made, without a second copy of
these numbers in its own config.
"""

from __future__ import annotations

import json

from handdiff import storage

FILENAME = "settings.json"


def write_set_settings(output: str, settings: dict) -> None:
    """``settings`` (JSON-able) as ``<output>/settings.json``."""
    storage.write_text(storage.join(output, FILENAME), json.dumps(settings, indent=1, sort_keys=True))


def read_set_settings(path: str, required: tuple[str, ...]) -> dict:
    """The settings of the set at ``path``; FileNotFoundError / ValueError naming the file when it
    or one of the ``required`` keys is missing (a set built before sets recorded them)."""
    uri = storage.join(path, FILENAME)
    if not storage.exists(uri):
        raise FileNotFoundError(f"{uri} not found: the set was built before sets recorded their settings; rebuild it")
    settings = json.loads(storage.read_text(uri))
    missing = [key for key in required if key not in settings]
    if missing:
        raise ValueError(f"{uri} does not record {', '.join(missing)}; rebuild the set")
    return settings
