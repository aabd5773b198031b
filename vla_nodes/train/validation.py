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

"""Validation signals that track closed-loop success, besides the flow loss.

- `first_frame_error`: the held-out chunk error at the first frame of each validation episode,
  in radians over joints 1-6. At the first frame the arm is at its start pose in every episode,
  so only the observation (the image) says where the object is: a policy that ignores the image
  predicts the mean chunk and scores badly here, whatever its flow loss.
- `pose_errors`: for a policy that predicts the object poses from the camera
  (env_state_from_image), its estimator's mean error against pose_node's poses, in cm and deg,
  on given frames (the held-out episodes' first frames, held-out pose snapshots): whether it
  localises objects it was not trained on, within minutes of training.
- `closed_loop_check`: a short lock-step evaluation of a checkpoint (vla-eval's held-out seeds,
  disjoint from the demos' seeds), success k/n.
"""

import numpy as np

from vla_nodes.contract import ACTION
from vla_nodes.models.vla import ACTION_PAD

FIRST_FRAME_SEED = 12345  # fixed flow noise: the metric moves only with the weights


def first_frame_indices(samples) -> list:
    """Indices into `samples` (train.Samples) of the first frame of every episode."""
    out = []
    for k, data in enumerate(samples.datasets):
        starts = {data.episodes[e]['rows'][0] for e in data.chosen}
        out += [int(samples.offsets[k]) + i for i, row in enumerate(data.samples)
                if int(row) in starts]
    return out


def first_frame_error(model, samples, stats, batch_size: int = 8):
    """Mean |predicted - demonstrated| (rad) over joints 1-6 and the chunk's real steps.

    At the first frame of every held-out episode; None without held-out episodes.
    """
    import torch
    from vla_nodes.policy.transforms import Unnormalize
    from vla_nodes.train.data import collate

    indices = first_frame_indices(samples) if samples is not None else []
    if not indices:
        return None
    unnormalize = Unnormalize({ACTION: stats[ACTION]})
    generator = torch.Generator().manual_seed(FIRST_FRAME_SEED)
    errors = []
    model.eval()
    try:
        for start in range(0, len(indices), batch_size):
            batch = collate([samples[i] for i in indices[start:start + batch_size]], stats)
            predicted = model.sample_actions(batch, generator=generator).float().cpu().numpy()
            pred = unnormalize({ACTION: predicted})[ACTION][..., :6]
            true = unnormalize({ACTION: batch[ACTION].numpy()})[ACTION][..., :6]
            real = ~batch[ACTION_PAD].numpy()
            errors.append(np.abs(pred - true).mean(axis=-1)[real])
    finally:
        model.train()
    return float(np.mean(np.concatenate(errors)))


def pose_errors(model, images, target, stats, names, batch_size: int = 64) -> dict:
    """The PoseEstimator's mean absolute error on frames, for the first object of `names`.

    Args:
        model: a VLAModel with env_state_from_image.
        images: uint8 # (N, S, S, 3), preprocessed as the model's input (unshifted).
        target: pose_node's poses, physical units # (N, E); rows with a NaN are skipped.
        stats: the run's normalization statistics (OBS_ENV_STATE).
        names: the E feature names (perception/env_state.py), e.g. cube.x ... cube.sin4yaw.

    Returns:
        {'x_cm', 'y_cm': mean |error| (cm), 'yaw_deg': mean |error| of the yaw modulo the
         object's symmetry (deg; absent for an object without yaw), 'n': frames used}.
    """
    import torch
    from vla_nodes.contract import OBS_ENV_STATE
    from vla_nodes.policy.transforms import Unnormalize

    target = np.asarray(target, np.float64)
    keep = np.isfinite(target).all(axis=1)
    images, target = np.asarray(images)[keep], target[keep]
    if not len(images):
        return {'n': 0}
    model.eval()
    try:
        with torch.no_grad():
            predicted = np.concatenate([
                model.env_readout(torch.from_numpy(images[i:i + batch_size])).float().numpy()
                for i in range(0, len(images), batch_size)])
    finally:
        model.train()
    predicted = Unnormalize({OBS_ENV_STATE: stats[OBS_ENV_STATE]})(
        {OBS_ENV_STATE: predicted})[OBS_ENV_STATE].astype(np.float64)
    column = {str(n).split('.', 1)[1]: i for i, n in enumerate(names)
              if str(n).split('.', 1)[0] == str(names[0]).split('.', 1)[0]}
    out = {f'{axis}_cm': float(100 * np.abs(predicted[:, column[axis]] -
                                            target[:, column[axis]]).mean())
           for axis in ('x', 'y')}
    yaw = [f for f in column if f.startswith('cos') and f.endswith('yaw')]
    if yaw:
        k = int(yaw[0][3:-3])

        def angle(values):  # k x yaw (rad)
            return np.arctan2(values[:, column[f'sin{k}yaw']], values[:, column[f'cos{k}yaw']])

        error = np.angle(np.exp(1j * (angle(predicted) - angle(target)))) / k
        out['yaw_deg'] = float(np.degrees(np.abs(error)).mean())
    out['n'] = int(len(images))
    return out


def closed_loop_check(checkpoint, episodes: int, action_rate_hz: float,
                      task: str = 'pick_red_cube', max_seconds: float = 10.0) -> dict:
    """Lock-step closed loop of `checkpoint` on `episodes` held-out seeds: success k/n."""
    from vla_nodes.orchestration.evaluate import evaluate, PolicySpec
    spec = PolicySpec('checkpoint', checkpoint=str(checkpoint), action_rate_hz=action_rate_hz)
    result = evaluate(spec, episodes, task=task, max_seconds=max_seconds, progress=False,
                      can_name='vla_train_check')
    return {'closed_loop_success': result.outcomes.count('success'),
            'closed_loop_episodes': len(result.outcomes), 'closed_loop_seeds': result.seeds,
            'closed_loop_final_distance_m': float(np.mean(result.final_distance_m))}
