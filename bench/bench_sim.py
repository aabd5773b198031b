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

"""Print SimWorld speed: real-time factor with and without RGB-D rendering, RGB-D frame rate.

Run: `python bench/bench_sim.py [--seconds 10]` (MUJOCO_GL=egl by default; on a machine without a
GPU EGL renders on the CPU through Mesa llvmpipe).

- physics real-time factor: simulated seconds per wall second, the arm moving between targets
  (physics step 2 ms), nothing rendered. The goal is >= 5x.
- physics + RGB-D at 30 Hz: the same, rendering one 640x480 colour + depth frame per 1/30 s of
  simulated time, as a 30 Hz camera needs. Above 1x the camera keeps up in real time.
- RGB-D frame rate: `render()` calls per second (colour + depth) at 320x240 and 640x480. The
  goal at 640x480 is >= 15 frames/s.
"""

import argparse
import os
import time

os.environ.setdefault('MUJOCO_GL', 'egl')  # must precede the mujoco import

import numpy as np  # noqa: E402

from vla_nodes import contract  # noqa: E402
from vla_nodes.sim.world import SimConfig, SimWorld  # noqa: E402

SWING = np.array([0.3, 0.15, -0.15, 0.3, 0.3, 0.3, 0.0])  # rad (and m): a busy arm


def _swing_targets(world: SimWorld, step: int) -> None:
    """Alternate the arm between two poses every 0.5 s of simulated time."""
    sign = 1.0 if (step // 15) % 2 else -1.0
    world.set_targets(np.array(contract.READY_POSITIONS) + sign * SWING)


def real_time_factor(seconds: float, render_hz: float = 0.0, width: int = 640,
                     height: int = 480) -> float:
    """Simulated seconds per wall second over `seconds` of simulated time.

    Args:
        seconds: simulated duration (s).
        render_hz: RGB-D frames rendered per simulated second (0: physics only).
        width: rendered width (px).
        height: rendered height (px).
    """
    world = SimWorld(SimConfig(width=width, height=height))
    period = 1.0 / 30.0 if not render_hz else 1.0 / render_hz
    if render_hz:
        world.render()  # the first call creates the GL context: not part of the figure
    steps = int(round(seconds / period))
    start = time.perf_counter()
    for i in range(steps):
        _swing_targets(world, i)
        world.step(period)
        if render_hz:
            world.render()
    wall = time.perf_counter() - start
    world.close()
    return world.time / wall


def frame_rate(width: int, height: int, frames: int) -> tuple:
    """RGB-D `render()` calls per second at width x height: (median rate, mean rate)."""
    world = SimWorld(SimConfig(width=width, height=height))
    world.render()
    times = []
    for i in range(frames):
        _swing_targets(world, i)
        world.step(1 / 30)
        start = time.perf_counter()
        world.render()
        times.append(time.perf_counter() - start)
    world.close()
    return 1.0 / float(np.median(times)), len(times) / float(np.sum(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=10.0,
                        help='simulated seconds per real-time-factor figure')
    parser.add_argument('--frames', type=int, default=100, help='frames per frame-rate figure')
    args = parser.parse_args()
    print(f'{os.cpu_count()} CPUs, MUJOCO_GL={os.environ["MUJOCO_GL"]}')
    print(f'physics real-time factor (dt 2 ms, arm moving): '
          f'{real_time_factor(args.seconds):.1f}x')
    print(f'physics + 640x480 RGB-D at 30 Hz real-time factor: '
          f'{real_time_factor(args.seconds, render_hz=30.0):.2f}x')
    for width, height in ((320, 240), (640, 480)):
        median, mean = frame_rate(width, height, args.frames)
        print(f'RGB-D frame rate {width}x{height}: {median:.1f} frames/s median, '
              f'{mean:.1f} mean')


if __name__ == '__main__':
    main()
