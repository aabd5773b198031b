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

"""Print perception processing time per 640x480 frame for each path (median of N runs).

Usage: python bench/bench_perception.py [--repeats N] [--threads N] [--input-size PX] [--small]

The frame is a simulated tabletop (SimWorld at 640x480, pick_red_cube seed 0). Paths:
sensor depth conversion as depth_node does it (16UC1 message -> 32FC1 message), the filters
(temporal, hole filling, both), the monocular path with a tiny random-weight Depth Anything model
(inference at --input-size, then table-plane alignment) and object detection (segmentation, back-
projection, fits). --small also times a random-weight model of Depth-Anything-V2-Small's size
(24.8 M parameters), whose cost is that of the real checkpoint.
"""

import argparse
import tempfile

import numpy as np

from timing import median_ms  # bench/timing.py, next to this script
from vla_nodes import contract
from vla_nodes.perception import align, filters, mono
from vla_nodes.perception.depth import DepthRange, metres_to_mm, mm_to_metres
from vla_nodes.perception.objects import ObjectDetector
from vla_nodes.ros import image


def sim_frame():
    """(rgb (480, 640, 3) uint8, depth (480, 640) uint16 mm, K, camera_to_base) of the sim."""
    from vla_nodes.sim.tasks import TASKS
    from vla_nodes.sim.world import SimConfig, SimWorld
    world = SimWorld(SimConfig(width=640, height=480))
    TASKS['pick_red_cube'].reset(world, 0)
    rgb, depth = world.render()
    k = world.intrinsics()[0]
    camera_to_base = world.camera_pose()
    world.close()
    return rgb, metres_to_mm(np.where(depth < 10.0, depth, np.nan)), k, camera_to_base


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (depth_node default: 1)')
    parser.add_argument('--input-size', type=int, default=518,
                        help='shorter side fed to the depth model (px)')
    parser.add_argument('--small', action='store_true',
                        help='also time a Depth-Anything-V2-Small-sized model (slow)')
    options = parser.parse_args(args)
    n = options.repeats
    rgb, mm, k, camera_to_base = sim_frame()
    print(f'frame 640x480, median of {n} runs; numpy paths single-threaded')

    depth_msg = image.to_msg(mm, contract.CAMERA_DEPTH_ENCODING)

    def sensor():
        metres = mm_to_metres(image.from_msg(depth_msg), DepthRange(0.05, 5.0))
        return image.to_msg(metres, contract.METRIC_DEPTH_ENCODING)

    metres = mm_to_metres(mm)
    holes = metres.copy()
    holes[np.random.default_rng(0).random(holes.shape) < 0.05] = np.nan  # 5 % dropouts
    temporal = filters.TemporalFilter()
    both = filters.DepthFilter(filters.FilterConfig(temporal=True, hole_filling=True))
    clip = filters.DepthFilter(filters.FilterConfig())
    rows = [
        ('sensor depth 16UC1 msg -> 32FC1 msg', sensor),
        ('filter: range clip (default chain)', lambda: clip.apply(holes)),
        ('filter: temporal', lambda: temporal.apply(holes)),
        ('filter: hole filling, 4 px', lambda: filters.fill_holes(holes, 4)),
        ('filter: clip + temporal + holes', lambda: both.apply(holes)),
    ]
    for name, fn in rows:
        print(f'{name:44s} {median_ms(fn, n):8.2f} ms')

    detector = ObjectDetector()
    found = detector.detect(rgb, metres, k, camera_to_base)
    print(f'{"objects: detect (" + str(len(found)) + " found)":44s} '
          f'{median_ms(lambda: detector.detect(rgb, metres, k, camera_to_base), n):8.2f} ms')

    import torch
    torch.set_num_threads(options.threads)
    plane = align.table_plane_depth(k, 640, 480, camera_to_base)
    sizes = ['tiny'] + (['small'] if options.small else [])
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            model = mono.MonoDepthModel(mono.save_random_model(folder, size),
                                        options.input_size)
            params = sum(p.numel() for p in model.model.parameters()) / 1e6
            repeats = n if size == 'tiny' else 3
            h, w = model.model_size(480, 640)
            label = f'mono {size} ({params:.2f} M) infer at {h}x{w}'
            print(f'{label:44s} {median_ms(lambda: model.predict(rgb), repeats, 1):8.2f} ms '
                  f'({torch.get_num_threads()} torch thread(s))')
    # Random weights give no scale to find: time the fit on output that is right up to scale.
    relative = (1.0 / metres - 0.02) / 3.5
    fit = align.fit_scale_shift(relative, plane)
    print(f'{"mono: table-plane alignment fit + apply":44s} '
          f'{median_ms(lambda: align.fit_scale_shift(relative, plane).apply(relative), n):8.2f}'
          f' ms ({fit.inliers} of {fit.references} references kept, rms {fit.rms_m * 1e3:.2f}'
          ' mm)')


if __name__ == '__main__':
    main()
