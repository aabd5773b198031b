# Copyright 2026 vla_nodes developers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

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
from ruamel.yaml.error import YAMLError

from vla_nodes.cli_errors import InputError, one_line

JSON_KEYS = 'vla_nodes.json_keys'  # custom_data key listing the JSON-encoded keys


class BagError(InputError, RuntimeError):
    """A bag that cannot be created, written or read; the message says what to do."""


def damaged_bag(path, problem) -> BagError:
    """The one message for a bag whose files are damaged: what is wrong and what to do."""
    problem = one_line(problem)
    problem = problem if len(problem) <= 300 else problem[:297] + '...'  # parsers quote a lot
    return BagError(f'cannot read bag {path}: {problem}. Run `vla-record --repair {path}` to '
                    f'keep its intact part (rebuilding metadata.yaml too), or leave this bag out.')


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
    """The inverse of encode_custom_data (numpy arrays come back as lists).

    Raises:
        ValueError: data that encode_custom_data did not write (not str -> str, bad JSON).
    """
    data = dict(data or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError('custom_data must map strings to strings')
    json_keys = json.loads(data.pop(JSON_KEYS, '[]'))
    if not isinstance(json_keys, list):
        raise ValueError(f'{JSON_KEYS} must list key names')
    return {k: json.loads(v) if k in json_keys else v for k, v in data.items()}


def read_metadata(path: str | Path) -> dict:
    """Return the custom metadata a BagWriter stored (task, robot, calibration...)."""
    info = load_metadata_yaml(Path(path))
    try:
        return decode_custom_data(info.get('custom_data'))
    except (ValueError, TypeError) as exc:
        raise damaged_bag(path, f'metadata.yaml custom_data: {exc}') from None


def load_metadata_yaml(path: Path) -> dict:
    """The `rosbag2_bagfile_information` of a finished bag; BagError says what to do if none."""
    meta = path / 'metadata.yaml'
    if not meta.is_file():
        raise BagError(
            f'{path} is not a finished rosbag2 bag: {meta} is missing. If the recorder was '
            f'killed before closing the bag, its messages up to the last flush are still in the '
            f'storage file: run `vla-record --repair {path}` (MCAP) or `ros2 bag reindex` '
            f'(sqlite3) to finish it.')
    try:
        info = YAML(typ='safe').load(meta.read_text(encoding='utf-8'))
    except (YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise damaged_bag(path, f'{meta} is not valid YAML ({exc})') from None
    if not isinstance(info, dict) or not isinstance(
            info.get('rosbag2_bagfile_information'), dict):
        raise damaged_bag(path, f'{meta} has no rosbag2_bagfile_information mapping')
    return info['rosbag2_bagfile_information']
