"""Fixtures shared by the test files."""

import os

import pytest

from vla_nodes.ros import local


@pytest.fixture
def ctx():
    """A fresh, initialized local-backend context, shut down after the test."""
    context = local.Context()
    context.init()
    yield context
    context.try_shutdown()


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
