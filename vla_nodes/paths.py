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

"""Where the package's data lives: the folder holding package.xml, launch/, config/ and msg/.

The same files are found three ways, tried in this order:

1. a ROS 2 install (`colcon build`): `ament_index_python` knows `share/vla_nodes`;
2. a source checkout (`pip install -e .`, tests): the repository root next to `vla_nodes/`;
3. a pip wheel: setup.py's `data_files` put them in `<sys.prefix>/share/vla_nodes`.

Launch files, parameter files and the `.msg` texts of `vla_nodes.ros.msgs` are looked up here.
"""

from pathlib import Path
import sys

PACKAGE = 'vla_nodes'
# A folder counts as the package share only if it holds this file; site-packages does not.
MARKER = 'package.xml'


def _ament_share() -> Path | None:
    """The colcon-installed share folder, or None without ROS or when not installed."""
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (LookupError, ValueError):  # PackageNotFoundError is a KeyError
        return None


def share_candidates() -> list[Path]:
    """Candidate share folders, best first (some may not exist)."""
    candidates = [
        Path(__file__).resolve().parents[1],   # source checkout root
        Path(sys.prefix) / 'share' / PACKAGE,  # pip wheel data_files
    ]
    ament = _ament_share()
    return ([ament] if ament is not None else []) + candidates


def package_share() -> Path:
    """Return the folder holding package.xml, launch/, config/ and msg/.

    Returns:
        The ament share directory when `ament_index_python` finds `vla_nodes` there, else the
        source checkout root, else `<sys.prefix>/share/vla_nodes`.

    Raises:
        FileNotFoundError: None of them holds package.xml; the message lists where it looked.
    """
    candidates = share_candidates()
    for folder in candidates:
        if (folder / MARKER).is_file():
            return folder
    looked = ', '.join(str(c) for c in candidates)
    raise FileNotFoundError(
        f'cannot find the {PACKAGE} data folder (with {MARKER}, launch/, config/, msg/); '
        f'looked in: {looked}. Build with colcon and source install/setup.bash, or install '
        f'the package with pip (pip install -e . from the repository root).')
