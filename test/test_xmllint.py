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
