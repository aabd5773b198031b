"""Fixtures shared by the test files."""

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
