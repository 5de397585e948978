"""Read ``.npz`` files that hold pickled object arrays without running code from storage.

HumanSD wrote LAION-Human's poses as object arrays (lists of per-person dicts), which
``np.load`` reads only when allowed to unpickle, and a pickle can call any function on
load. Here an object array's pickle goes through an unpickler that rebuilds numpy
arrays, dtypes and scalars, dicts, lists, tuples, strings and numbers, and refuses
every other global (``os.system``, ``builtins.eval``, any class) with
``pickle.UnpicklingError`` naming it. Arrays of plain dtypes are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np

# What numpy's own pickles of arrays, dtypes and scalars refer to (numpy 1.x and 2.x names);
# dicts, lists, tuples, str, bytes, numbers and bools need no global at all.
ALLOWED_GLOBALS = frozenset(
    (module, name)
    for prefix in ("numpy.core", "numpy._core")
    for module, name in (
        (f"{prefix}.multiarray", "_reconstruct"),
        (f"{prefix}.multiarray", "scalar"),
        (f"{prefix}.numeric", "_frombuffer"),
    )
) | {("numpy", "ndarray"), ("numpy", "dtype")}


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that resolves only ``ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused to unpickle {module}.{name}: only numpy arrays and plain Python values are read")
        return super().find_class(module, name)


def restricted_loads(data: bytes):
    return RestrictedUnpickler(io.BytesIO(data)).load()


def _read_npy(f) -> np.ndarray:
    version = np.lib.format.read_magic(f)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, fortran_order, dtype = read_header(f)
    if not dtype.hasobject:
        f.seek(0)
        return np.lib.format.read_array(f, allow_pickle=False)
    array = RestrictedUnpickler(f).load()
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise ValueError(f"the pickled payload is not the declared {shape} array")
    return array


def load_npz(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (``{"arr_0": ...}``), object arrays included, refusing any
    pickle that names something other than numpy arrays and plain values.

    Raises ``pickle.UnpicklingError`` for a refused pickle and ``ValueError`` for a file that
    is not an npz archive of ``.npy`` arrays.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise ValueError(f"not an npz archive: {err}") from None
    arrays = {}
    with archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as f:
                arrays[member[: -len(".npy")]] = _read_npy(io.BytesIO(f.read()))
    return arrays
