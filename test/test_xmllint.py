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

"""package.xml against the package format 3 schema and the robot description as well-formed XML.

As ament_xmllint checks a ROS 2 package (offline: Debian's package ships the schema).
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.linter
def test_xmllint(ament_linter):
    paths = ['package.xml'] + sorted(str(p.relative_to(ROOT))
                                     for p in (ROOT / 'description').glob('*.xacro'))
    assert len(paths) > 1
    assert ament_linter('xmllint', paths) == 0, 'ament_xmllint found invalid XML'
