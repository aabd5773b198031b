"""Print SimWorld speed: render time per RGB-D frame at 320x240 and 640x480, physics steps/s.

Run: `python bench/bench_sim.py` (MUJOCO_GL=egl by default, CPU llvmpipe on CI machines).
"""

import time

import numpy as np

from vla_nodes import contract
from vla_nodes.sim.world import SimConfig, SimWorld


def bench_render(width: int, height: int, frames: int = 30) -> float:
    """Median wall time (ms) of one `render()` (RGB + depth) at width x height (px)."""
    world = SimWorld(SimConfig(width=width, height=height))
    world.render()  # the first call creates the GL context
    times = []
    for _ in range(frames):
        world.step(1 / 30)
        start = time.perf_counter()
        world.render()
        times.append(time.perf_counter() - start)
    world.close()
    return 1000.0 * float(np.median(times))


def bench_physics(seconds: float = 5.0) -> float:
    """Physics steps per wall second while the arm moves between two targets."""
    world = SimWorld(SimConfig())
    ready = np.array(contract.READY_POSITIONS)
    steps = int(round(seconds / world.config.physics_dt))
    start = time.perf_counter()
    for i in range(10):
        world.set_targets(ready + (0.3 if i % 2 else -0.3) * np.array([1, 0.5, -0.5, 1, 1, 1, 0]))
        world.step(seconds / 10)
    return steps / (time.perf_counter() - start)


def main() -> None:
    for width, height in ((320, 240), (640, 480)):
        print(f'render {width}x{height} rgb+depth: {bench_render(width, height):.1f} ms/frame')
    print(f'physics: {bench_physics():.0f} steps/s (dt 2 ms, arm moving)')


if __name__ == '__main__':
    main()
