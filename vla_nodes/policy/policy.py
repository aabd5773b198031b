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

"""VLAPolicy: observation dict in, absolute joint-target chunk out (openpi's narrow interface).

Like openpi `openpi_client/base_policy.py` (`infer(obs) -> dict`, `reset()`) and openpi
`policies/droid_policy.py` (`make_droid_example()`): the policy hides the model, the transforms
and the normalization. policy_node calls `infer` from its worker thread. Observation keys are
the contract's (vla_nodes/contract.py):
    OBS_IMAGE        rgb uint8 # (H, W, 3), any size (resized with padding)
    further cameras  the model's `extra_images` keys (observation.images.<camera>), rgb uint8
                     # (H, W, 3) each, resized like OBS_IMAGE but not cropped
    OBS_DEPTH        metric depth float32 metres, NaN = invalid # (H, W), aligned to the image
                     (read only by models with sensor-depth tokens; others ignore it)
    OBS_STATE        joint positions, rad, gripper opening m # (7,)
    OBS_INSTRUCTION  task text (str)
    OBS_ENV_STATE    object poses # (E,) (perception/env_state.py), for a model with
                     env_state_dim > 0 (vla-train --env-state); others ignore it
    OBS_INTRINSICS   optional pinhole K of OBS_IMAGE, px # (3, 3) (camera_info); carried
                     through the crop and resize, read only by models with a ray-map prior
    'seed'           optional int: the chunk is a pure function of (weights, observation, seed)
"""

import threading
import time

import numpy as np
import torch

from vla_nodes.contract import (ACTION, OBS_DEPTH, OBS_ENV_STATE, OBS_IMAGE, OBS_INSTRUCTION,
                                OBS_INTRINSICS, OBS_STATE, READY_POSITIONS)
from vla_nodes.models import presets
from vla_nodes.models.vla import VLAModel
from vla_nodes.perception.env_state import objects_of
from vla_nodes.policy.base import PolicyInputs
from vla_nodes.policy.checkpoint import (contract_cameras, contract_env_state, load_checkpoint,
                                         make_contract)
from vla_nodes.policy.transforms import (check_crop, compose, Normalize, NormStats, ResizeWithPad,
                                         Unnormalize)

SEED_KEY = 'seed'
DEMO_PRESET = 'tiny_pi0_depth'  # what policy_node runs without a checkpoint
# Spread of the demo statistics: 0.1 rad per joint, 0.01 m for the gripper (a quarter of its
# stroke); 2.326 is the standard normal's 99th percentile, so q01/q99 = mean -/+ 2.326 std.
DEMO_STD = (0.1,) * 6 + (0.01,)
Z99 = 2.326


def demo_stats():
    """Norm stats centred on contract.READY_POSITIONS, for state and action (random-init demo)."""
    mean = np.asarray(READY_POSITIONS, dtype=np.float32)
    std = np.asarray(DEMO_STD, dtype=np.float32)
    s = NormStats(mean=mean, std=std, q01=mean - Z99 * std, q99=mean + Z99 * std)
    return {OBS_STATE: s, ACTION: s}


class VLAPolicy:
    """A VLAModel wrapped with its input/output transforms and normalization statistics.

    Implements policy/base.py's `Policy`: `inputs` says what policy_node must feed it.
    """

    def __init__(self, model, stats, contract=None, seed=0, use_cache=True):
        """Wrap a model.

        Args:
            model: a VLAModel.
            stats: {OBS_STATE: NormStats, ACTION: NormStats} in physical units.
            contract: the robot contract (policy/checkpoint.py make_contract); derived if None.
            seed: noise seed for observations without a 'seed' field.
            use_cache: reuse the prefix keys/values across denoising steps (same chunk, faster).
        """
        self.model = model.eval()
        self.use_cache = use_cache
        self.stats = stats
        size = model.config.image_size
        self.contract = contract or make_contract(model.config.horizon, (size, size))
        self._inputs = compose([
            ResizeWithPad(size, size, check_crop(self.contract.get('image_crop')),
                          tuple(model.config.extra_images)),
            Normalize({k: stats[k] for k in (OBS_STATE, OBS_ENV_STATE) if k in stats})])
        self._outputs = Unnormalize({ACTION: stats[ACTION]})
        self._seed = seed
        self._generator = torch.Generator().manual_seed(seed)
        self._lock = threading.Lock()
        self.inputs = PolicyInputs(
            joint_names=tuple(self.contract['joint_names']),
            action_rate_hz=float(self.contract['action_rate_hz']),
            horizon=int(model.config.horizon), cameras=tuple(contract_cameras(self.contract)),
            needs_depth=bool(model.config.needs_depth),
            env_objects=tuple(objects_of(contract_env_state(self.contract))))

    @classmethod
    def from_checkpoint(cls, directory, device='cpu', expected_contract=None):
        """Load from a local checkpoint directory (policy/checkpoint.py); never downloads."""
        ckpt = load_checkpoint(directory, expected_contract=expected_contract, device=device)
        return cls(ckpt['model'], ckpt['norm_stats'], ckpt['contract'])

    @classmethod
    def random_init(cls, config=None, stats=None, seed=0, device='cpu'):
        """A random-weight tiny model: the walking skeleton's demo policy.

        Its actions are meaningless noise shaped like a chunk: joint targets scattered around
        contract.READY_POSITIONS (demo_stats: about 0.1 rad, gripper 0.01 m). It exercises the
        whole camera -> model -> action path; the arm's safety layer still clamps what it sends.
        Weights depend only on `seed` (the global torch RNG is left untouched).

        Args:
            config: a VLAConfig; default the DEMO_PRESET (models/presets.py).
            stats: {OBS_STATE, ACTION: NormStats}; default demo_stats().
            seed: weight and noise seed.
            device: where the weights are made and live (a 3B model is made on a GPU in
                seconds, on a CPU in minutes).
        """
        with torch.random.fork_rng(devices=[]), torch.device(device):
            torch.manual_seed(seed)
            model = VLAModel(config or presets.get(DEMO_PRESET))
        return cls(model, stats or demo_stats(), seed=seed)

    def infer(self, obs):
        """Predict an action chunk for one observation.

        Args:
            obs: dict with the module docstring's keys (numpy arrays, str, optional int seed).

        Returns:
            {'actions': absolute joint targets, rad, gripper m, float32 # (H, 7),
             'infer_ms': wall time of this call in milliseconds}.

        Raises:
            KeyError: a required key is missing. ValueError: bad shape or non-finite state.
        """
        start = time.perf_counter()
        config = self.model.config
        env_dim = config.env_state_dim if config.reads_env_state else 0
        data = self._inputs(_check(obs, config.state_dim, config.sensor_depth,
                                   config.extra_images, env_dim))
        batch = {
            OBS_IMAGE: torch.from_numpy(np.ascontiguousarray(data[OBS_IMAGE]))[None],
            OBS_STATE: torch.from_numpy(data[OBS_STATE])[None],
            OBS_INSTRUCTION: [str(data[OBS_INSTRUCTION])],
        }
        for key in config.extra_images:
            batch[key] = torch.from_numpy(np.ascontiguousarray(data[key]))[None]
        if env_dim:
            batch[OBS_ENV_STATE] = torch.from_numpy(data[OBS_ENV_STATE])[None]
        if config.sensor_depth:
            batch[OBS_DEPTH] = torch.from_numpy(np.ascontiguousarray(data[OBS_DEPTH]))[None]
        if data.get(OBS_INTRINSICS) is not None:
            batch[OBS_INTRINSICS] = torch.from_numpy(np.asarray(data[OBS_INTRINSICS]))[None]
        with self._lock, torch.inference_mode():
            generator = self._generator
            if obs.get(SEED_KEY) is not None:
                generator = torch.Generator().manual_seed(int(obs[SEED_KEY]))
            chunk = self.model.sample_actions(batch, generator=generator,
                                              use_cache=self.use_cache)  # (1, H, A)
        actions = self._outputs({ACTION: chunk[0].float().cpu().numpy()})[ACTION]
        return {'actions': actions.astype(np.float32),
                'infer_ms': (time.perf_counter() - start) * 1e3}

    def reset(self):
        """Start a new episode: the noise of unseeded observations restarts from `seed`."""
        with self._lock:
            self._generator.manual_seed(self._seed)


def _check(obs, state_dim, needs_depth=True, extra_images=(), env_state_dim=0):
    """Validate the fields infer reads; bad input never reaches the model."""
    required = (OBS_IMAGE, OBS_DEPTH, OBS_STATE, OBS_INSTRUCTION) + tuple(extra_images) + (
        (OBS_ENV_STATE,) if env_state_dim else ())
    missing = [k for k in required if k not in obs and (needs_depth or k != OBS_DEPTH)]
    if missing:
        raise KeyError(f'observation lacks {missing}')
    for key in (OBS_IMAGE,) + tuple(extra_images):
        image = np.asarray(obs[key])
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'{key} must be uint8 (H, W, 3), got {image.dtype} {image.shape}')
    if needs_depth and np.asarray(obs[OBS_DEPTH]).ndim != 2:
        raise ValueError(f'{OBS_DEPTH} must be (H, W) metres, got {np.shape(obs[OBS_DEPTH])}')
    state = np.asarray(obs[OBS_STATE], dtype=np.float32)
    if state.shape != (state_dim,) or not np.all(np.isfinite(state)):
        raise ValueError(f'{OBS_STATE} must be {state_dim} finite values, got {state}')
    if env_state_dim:
        env = np.asarray(obs[OBS_ENV_STATE], dtype=np.float32)
        if env.shape != (env_state_dim,) or not np.all(np.isfinite(env)):
            raise ValueError(f'{OBS_ENV_STATE} must be {env_state_dim} finite values (object '
                             f'poses from /vla/objects), got {env}')
        obs = {**obs, OBS_ENV_STATE: env}
    k = obs.get(OBS_INTRINSICS)
    if k is not None and (np.shape(k) != (3, 3) or not np.all(np.isfinite(k))):
        raise ValueError(f'{OBS_INTRINSICS} must be a finite 3 x 3 K in px, got {k}')
    return {**obs, OBS_STATE: state}


def make_piper_example(seed=0):
    """A valid single-Piper observation: 480x640 camera frame, metric depth with holes, ready pose.

    Args:
        seed: numpy seed for the random image and depth; also the observation's 'seed'.
    """
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.3, 1.5, size=(480, 640)).astype(np.float32)
    depth[rng.random((480, 640)) < 0.05] = np.nan  # invalid pixels, as depth_node publishes them
    return {
        OBS_IMAGE: rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8),
        OBS_DEPTH: depth,
        OBS_STATE: np.asarray(READY_POSITIONS, dtype=np.float32),
        OBS_INSTRUCTION: 'pick up the red cube and place it in the bowl',
        SEED_KEY: seed,
    }
