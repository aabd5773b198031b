"""Every source file carries the Apache-2.0 header and the LICENSE is the Apache 2.0 text.

As ament_copyright checks a ROS 2 package; package.xml says Apache-2.0.
"""

import pytest

PATHS = ['vla_nodes', 'test', 'bench', 'setup.py', 'LICENSE']


@pytest.mark.linter
def test_copyright(ament_linter):
    assert ament_linter('copyright', PATHS) == 0, 'ament_copyright found errors'
