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

"""vla-snapshots: scene frames labelled with pose_node's object poses, for learning them.

Where it fits: a policy that predicts the object poses from the camera (`VLAConfig.
env_state_from_image`, models/keypoints.PoseEstimator) learns them from the dataset's poses;
50 demos show it 50 placements, too few to generalise. A pose label needs no action, so frames
of the scene with the objects put elsewhere (in a lab: move the cube by hand, snap a frame) are
cheap, and `vla-train --pose-snapshots DIR` trains the estimator on them too. Here the simulator
lays out a task's scene for each seed (`Task.reset`: the demos' placement distribution; pass
seeds that the demos (1-50) and the evaluation (1001-1050) do not use), renders the scene
camera, and labels the frame with pose_node's own perception: the depth as sim_node -> depth_node
carry it (uint16 mm, then metres with depth_node's valid range), `ObjectDetector` with
pose_node's defaults and the camera-to-base transform sim_node publishes on /tf_static, then
`env_state.vector`: exactly how a demo's `observation.environment_state` is made. The simulator's
own object poses are stored beside them for diagnosis only (`truth.*`), never as labels.

    vla-snapshots OUT --count 1000 --first-seed 100000 [--task pick_red_cube] [--arm ready]

`--arm ready`: the arm at its ready pose (each demo's first frame). `--arm expert`: the scripted
expert runs for a random 0-4 s first, so the arm is on its way to the object (occluding it as
in the demos' later frames); the label is still pose_node's on that frame.

Format of OUT (read it with `read_snapshots`):
    snapshots.json   {"format": FORMAT, "task", "count", "environment_state_names", "camera":
                      {"width", "height", "K", "camera_to_base"}, "arm", "seeds"}
    labels.csv       one row per snapshot: index, seed, then each environment state name
                     (pose_node's label, base_link: m and cos/sin of k yaw; empty = not
                     detected), then truth.<name> (the simulator's)
    color/NNNNNN.png the scene camera's RGB frame (width x height, 8-bit)
    depth/NNNNNN.png its aligned depth, 16-bit millimetres, 0 = invalid (realsense-ros's)
"""

import argparse
import csv
import json
import math
from pathlib import Path
import sys

import numpy as np

from vla_nodes.perception import env_state

FORMAT = 'vla_nodes.pose_snapshots/1'
INFO_FILE, LABELS_FILE = 'snapshots.json', 'labels.csv'
EXPERT_MAX_S = 4.0  # --arm expert: run it this long at most (it grasps in about 4 s)


def label(rgb, depth_mm, k_matrix, camera_to_base, objects, detector=None):
    """pose_node's environment state # (E,) of one RGB-D frame; NaN for an undetected object.

    Args:
        rgb: (H, W, 3) uint8.
        depth_mm: (H, W) uint16 millimetres aligned to rgb, 0 = invalid (the camera's topic).
        k_matrix: (3, 3) intrinsics (px).
        camera_to_base: (4, 4) camera optical frame in base_link (m).
        objects: the categories of the vector, in order (Task.objects).
        detector: an ObjectDetector; pose_node's default configuration when None.
    """
    from vla_nodes.perception.depth import DepthRange, mm_to_metres
    from vla_nodes.perception.objects import ObjectDetector

    detector = detector or ObjectDetector()
    depth_m = mm_to_metres(depth_mm, DepthRange(0.05, 5.0))  # config/sim.yaml's depth_node
    found = detector.detect(rgb, depth_m, k_matrix, camera_to_base)
    best = {}
    for obj in found:  # the highest score per category, as env_state.detection_poses
        if obj.category not in best or obj.score > best[obj.category].score:
            best[obj.category] = obj
    return env_state.vector({c: o.pose for c, o in best.items()}, camera_to_base, objects)


def truth(world, objects) -> np.ndarray:
    """The simulator's environment state # (E,): diagnosis only, never a training label."""
    return np.asarray([v for c in objects for v in env_state.pose_features(
        world.object_pose(c), c)], dtype=np.float32)


def _published_transform(world) -> np.ndarray:
    """The camera-to-base transform as sim_node puts it on /tf_static (x, y, z, quaternion)."""
    from vla_nodes.arm.kinematics import pose_to_xyz_quat, xyz_quat_to_pose
    return xyz_quat_to_pose(pose_to_xyz_quat(world.camera_pose()))


def _arm_on_its_way(world, task, rng) -> None:
    """Let the scripted expert move the arm for a random 0-EXPERT_MAX_S s."""
    from vla_nodes.sim.expert import ScriptedExpert
    expert, until = ScriptedExpert(task, world), rng.uniform(0.0, EXPERT_MAX_S)
    while world.time < until and not expert.done:
        world.set_targets(expert.action(world))
        world.step(0.02)


def record_snapshots(out, count: int, first_seed: int, task_name: str = 'pick_red_cube',
                     arm: str = 'ready', progress: bool = True) -> Path:
    """Render and label `count` snapshots, seeds first_seed ... first_seed + count - 1.

    Returns:
        The folder `out` (the module docstring's format).

    Raises:
        FileExistsError: `out` already holds snapshots.
        ValueError: an unknown arm mode or task.
    """
    from PIL import Image
    from tqdm import tqdm

    from vla_nodes.perception.depth import metres_to_mm
    from vla_nodes.perception.objects import ObjectDetector
    from vla_nodes.sim.simulation import MAX_VALID_DEPTH_M
    from vla_nodes.sim.tasks import get_task
    from vla_nodes.sim.world import SimConfig, SimWorld

    if arm not in ('ready', 'expert'):
        raise ValueError(f"--arm {arm!r}: choose 'ready' or 'expert'")
    task = get_task(task_name)
    out = Path(out)
    if (out / INFO_FILE).exists():
        raise FileExistsError(f'{out} already holds snapshots ({INFO_FILE}); choose another')
    for sub in ('color', 'depth'):
        (out / sub).mkdir(parents=True, exist_ok=True)
    world, detector = SimWorld(SimConfig()), ObjectDetector()
    names = env_state.feature_names(task.objects)
    rows = []
    try:
        for i in tqdm(range(count), disable=not progress, desc='vla-snapshots'):
            seed = first_seed + i
            task.reset(world, seed)
            if arm == 'expert':
                _arm_on_its_way(world, task, np.random.default_rng([seed, 1]))
            rgb, depth = world.render()
            depth_mm = metres_to_mm(np.where(depth < MAX_VALID_DEPTH_M, depth, np.nan))
            k_matrix = world.intrinsics()[0]
            camera_to_base = _published_transform(world)
            values = label(rgb, depth_mm, k_matrix, camera_to_base, task.objects, detector)
            Image.fromarray(rgb).save(out / 'color' / f'{i:06d}.png')
            Image.fromarray(depth_mm).save(out / 'depth' / f'{i:06d}.png')
            rows.append([i, seed, *values, *truth(world, task.objects)])
    finally:
        world.close()
    with open(out / LABELS_FILE, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['index', 'seed', *names, *(f'truth.{n}' for n in names)])
        for row in rows:
            writer.writerow(['' if isinstance(v, float) and math.isnan(v) else v
                             for v in row])
    info = {'format': FORMAT, 'task': task.name, 'count': count, 'arm': arm,
            'environment_state_names': names, 'seeds': [first_seed, first_seed + count - 1],
            'camera': {'width': world.config.width, 'height': world.config.height,
                       'K': np.asarray(k_matrix).tolist(),
                       'camera_to_base': np.asarray(camera_to_base).tolist()}}
    (out / INFO_FILE).write_text(json.dumps(info, indent=1) + '\n')  # last: the set is whole
    return out


def read_snapshots(folder, image_size: int = 0, crop=None, limit: int = 0) -> dict:
    """A snapshot folder's frames and labels.

    Args:
        folder: what `record_snapshots` wrote.
        image_size: S > 0: each frame resized with padding to S x S after `crop`, exactly as
            the dataset's frames (train/data.py, policy/transforms.resize_with_pad); 0: as is.
        crop: (top, left, bottom, right) fractions (transforms.crop_fraction), or None.
        limit: only the first `limit` snapshots (0: all).

    Returns:
        {'image': uint8 # (N, S, S, 3), 'env_state': pose_node's labels # (N, E) (NaN: not
         detected), 'truth': the simulator's # (N, E), 'names': [E names], 'seed': # (N,),
         'info': snapshots.json}.

    Raises:
        FileNotFoundError: not a snapshot folder (no snapshots.json).
    """
    from PIL import Image

    from vla_nodes.policy.transforms import resize_with_pad

    folder = Path(folder)
    if not (folder / INFO_FILE).is_file():
        raise FileNotFoundError(f'{folder} holds no pose snapshots ({INFO_FILE}): record them '
                                'with vla-snapshots')
    info = json.loads((folder / INFO_FILE).read_text())
    names = list(info['environment_state_names'])
    with open(folder / LABELS_FILE, newline='') as f:
        rows = list(csv.DictReader(f))
    rows = rows[:limit] if limit else rows

    def column(key):
        return [float(r[key]) if r[key] != '' else math.nan for r in rows]

    images = []
    for r in rows:
        rgb = np.asarray(Image.open(folder / 'color' / f'{int(r["index"]):06d}.png')
                         .convert('RGB'))
        images.append(resize_with_pad(rgb, image_size, image_size, crop) if image_size else rgb)

    def table(keys):  # (N, E)
        return np.asarray([column(k) for k in keys], np.float32).T.reshape(-1, len(keys))

    return {'image': np.stack(images), 'env_state': table(names),
            'truth': table([f'truth.{n}' for n in names]),
            'names': names, 'seed': np.asarray([int(r['seed']) for r in rows]), 'info': info}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='vla-snapshots', description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output folder (new)')
    parser.add_argument('--count', type=int, default=200, help='snapshots to record')
    parser.add_argument('--first-seed', type=int, default=100000,
                        help='scene seed of the first snapshot; keep clear of the demos (1-50) '
                             'and the evaluation (1001-1050)')
    parser.add_argument('--task', default='pick_red_cube', help='sim task (sim/tasks.py)')
    parser.add_argument('--arm', default='ready', choices=('ready', 'expert'),
                        help='ready pose, or on its way to the object (the scripted expert)')
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    opts = parser.parse_args(argv)
    if opts.count < 1:
        parser.error('--count must be >= 1')
    try:
        out = record_snapshots(opts.out, opts.count, opts.first_seed, opts.task, opts.arm,
                               opts.progress)
    except (FileExistsError, ValueError) as error:
        print(f'vla-snapshots: {error}', file=sys.stderr)
        return 2
    labels = read_snapshots(out)['env_state']
    seen = int(np.isfinite(labels).all(axis=1).sum())
    print(f'vla-snapshots: {opts.count} snapshots in {out} ({seen} with every object detected)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
