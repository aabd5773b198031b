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
