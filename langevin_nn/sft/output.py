"""Output of ``langevin-nn sft``: nested dicts of arrays and numbers as JSON or HDF5."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from ..errors import UserError


def _plain(obj):
    """JSON-ready: arrays -> lists, numpy scalars -> Python, tuples -> lists, NaN -> None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(path, data: dict) -> None:
    """Write ``data`` (nested dicts of arrays and numbers) as JSON."""
    with open(path, "w") as fh:
        json.dump(_plain(data), fh, indent=1)
        fh.write("\n")


def write_h5(path, data: dict) -> None:
    """Write ``data`` as HDF5: dicts -> groups, arrays and lists of numbers -> datasets,
    scalars and strings -> attributes; None is skipped."""
    import h5py

    def put(g, d):
        for k, v in d.items():
            k = str(k)
            if v is None:
                continue
            if dataclasses.is_dataclass(v):
                v = dataclasses.asdict(v)
            if isinstance(v, dict):
                put(g.create_group(k), v)
            elif isinstance(v, (str, bool, int, float, np.integer, np.floating, np.bool_)):
                g.attrs[k] = v
            else:
                arr = np.asarray(v)
                if arr.dtype.kind in "US":
                    g.create_dataset(k, data=arr.astype(object), dtype=h5py.string_dtype())
                elif arr.dtype.kind == "O":
                    g.attrs[k] = json.dumps(_plain(v))
                else:
                    g.create_dataset(k, data=arr)

    try:
        with h5py.File(path, "w") as f:
            put(f, data)
    except OSError as e:
        raise UserError(f"{path}: cannot write HDF5 file ({e})") from None
