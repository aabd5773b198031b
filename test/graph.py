"""Spinning a few nodes of the local backend in a test (shared by the node test files)."""

import time

from vla_nodes.ros import local


def spin(ctx, nodes, seconds, until=lambda: False, executor_type=None):
    """Spin `nodes` for `seconds`, or until `until()` holds; return whether it held."""
    executor = (executor_type or local.MultiThreadedExecutor)(context=ctx)
    for node in nodes:
        executor.add_node(node)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end and not until():
            executor.spin_once(timeout_sec=0.02)
    finally:
        executor.shutdown()
    return until()
