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

"""Every source file carries the Apache-2.0 header and the LICENSE is the Apache 2.0 text.

As ament_copyright checks a ROS 2 package; package.xml says Apache-2.0.
"""

import pytest

PATHS = ['vla_nodes', 'test', 'bench', 'setup.py', 'LICENSE']


@pytest.mark.linter
def test_copyright(ament_linter):
    assert ament_linter('copyright', PATHS) == 0, 'ament_copyright found errors'
