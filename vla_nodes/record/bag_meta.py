"""A bag's custom metadata (task, robot, calibration) as rosbag2 stores it, and its errors.

rosbag2 allows `custom_data` only as str -> str: strings are stored as they are, anything else as
JSON, and the names of the JSON-encoded keys are listed under `JSON_KEYS`. `read_metadata(path)`
gives the original dict back. Used by the writer (`bag.py`) and the reader (`bag_read.py`).
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
from ruamel.yaml import YAML

JSON_KEYS = 'vla_nodes.json_keys'  # custom_data key listing the JSON-encoded keys


class BagError(RuntimeError):
    """A bag that cannot be created, written or read; the message says what to do."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f'cannot store {type(value).__name__} in bag metadata; use str, numbers, '
                    f'lists, dicts or numpy arrays')


def encode_custom_data(metadata: dict) -> dict[str, str]:
    """{'task': 'pick', 'calibration': {...}} -> rosbag2 custom_data (str -> str)."""
    if JSON_KEYS in metadata:
        raise ValueError(f'{JSON_KEYS!r} is reserved in bag metadata')
    data, json_keys = {}, []
    for key, value in metadata.items():
        if isinstance(value, str):
            data[str(key)] = value
        else:
            data[str(key)] = json.dumps(value, default=_jsonable, sort_keys=True)
            json_keys.append(str(key))
    if json_keys:
        data[JSON_KEYS] = json.dumps(sorted(json_keys))
    return data


def decode_custom_data(data: dict[str, str] | None) -> dict:
    """The inverse of encode_custom_data (numpy arrays come back as lists)."""
    data = dict(data or {})
    json_keys = json.loads(data.pop(JSON_KEYS, '[]'))
    return {k: json.loads(v) if k in json_keys else v for k, v in data.items()}


def read_metadata(path: str | Path) -> dict:
    """Return the custom metadata a BagWriter stored (task, robot, calibration...)."""
    info = load_metadata_yaml(Path(path))
    return decode_custom_data(info.get('custom_data'))


def load_metadata_yaml(path: Path) -> dict:
    """The `rosbag2_bagfile_information` of a finished bag; BagError says what to do if none."""
    meta = path / 'metadata.yaml'
    if not meta.is_file():
        raise BagError(
            f'{path} is not a finished rosbag2 bag: {meta} is missing. If the recorder was '
            f'killed before closing the bag, its messages up to the last flush are still in the '
            f'storage file: run `vla-record --repair {path}` (MCAP) or `ros2 bag reindex` '
            f'(sqlite3) to finish it.')
    return YAML(typ='safe').load(meta.read_text(encoding='utf-8'))['rosbag2_bagfile_information']
