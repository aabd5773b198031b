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

"""Docstrings, as ament_pep257 checks them on a ROS 2 package, in the Google convention we write.

The missing-docstring checks (D100-D107) are off, as in ament's own convention: a short helper
or test says what it does by its name. So is D403 (capitalise the first word): a docstring may
open with a name that keeps its case (rclpy, SigLIP, CameraInfo, DepthVLA).
"""

import pytest

PATHS = ['vla_nodes', 'test', 'bench', 'setup.py']


@pytest.mark.linter
def test_pep257(ament_linter):
    ignore = [f'D10{i}' for i in range(8)] + ['D403']
    argv = ['--convention', 'google', '--add-ignore', *ignore, '--']
    assert ament_linter('pep257', argv + PATHS) == 0, 'ament_pep257 found docstring errors'
