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

"""Fixtures shared by the test files."""

import importlib
import os
from pathlib import Path
import shutil
import subprocess

import pytest

from vla_nodes.ros import local


@pytest.fixture
def ctx():
    """A fresh, initialized local-backend context, shut down after the test."""
    context = local.Context()
    context.init()
    yield context
    context.try_shutdown()


@pytest.fixture
def tester(ctx):
    """A bare node on `ctx` for a test's own publishers, subscriptions and clients."""
    return local.Node('tester', context=ctx)


@pytest.fixture(scope='module')
def one_thread():
    """torch on one thread: tiny matmuls on a busy 2-core machine are far slower with two."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def world():
    """The default simulated scene (320 x 240, as sim_node publishes), one per test module."""
    os.environ.setdefault('MUJOCO_GL', 'egl')
    from vla_nodes.sim.world import SimConfig, SimWorld
    sim = SimWorld(SimConfig())
    yield sim
    sim.close()


@pytest.fixture
def ament_linter(monkeypatch):
    """Run ament linter `name` (pep257, copyright, xmllint) over the package; return its status.

    The linter's own code runs either way: imported, where ROS puts it on the path (`colcon
    test`), else its Debian command (`scripts/setup.sh` installs python3-ament-<name>), whose
    system python has the linter's dependencies (pydocstyle, xmllint) the venv does not.
    """
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)

    def run(name: str, argv: list) -> int:
        try:
            main = importlib.import_module(f'ament_{name}.main').main
        except ImportError:
            command = shutil.which(f'ament_{name}') or f'/usr/bin/ament_{name}'
            if not Path(command).is_file():
                pytest.fail(f'ament_{name} is not installed: run scripts/setup.sh '
                            f'(apt-get install python3-ament-{name})')
            result = subprocess.run([command, *argv], capture_output=True, text=True)
            print(result.stdout + result.stderr)  # shown by pytest when the test fails
            return result.returncode
        return main(argv=argv)
    return run
