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

"""Code style, as ament_flake8 checks it on a ROS 2 package (99 columns, google import order)."""

from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.linter
def test_flake8():
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', '--max-line-length', '99', '--import-order-style',
         'google', '--application-import-names', 'vla_nodes,timing,graph',
         '--extend-ignore', 'D,A003', 'vla_nodes', 'test', 'bench', 'setup.py'],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, 'flake8 found style errors:\n' + result.stdout + result.stderr
